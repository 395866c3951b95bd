//! The typed half of the task cell: allocation, poll harness, waker vtable.
//!
//! `task/mod.rs` draws the cell and `state.rs` the state word. This file holds the parts that
//! know the future's type `F` and the scheduler's type `S`:
//! - `new_task` writes a `Cell<F, S>` into a block from the size-class slabs (`slab::alloc`,
//!   `slab.rs`). The cell starts with three references: its first `Notified`, the owned
//!   list's (handed back as a raw `TaskRef`, which the caller must list or cancel) and the
//!   `JoinHandle`'s. `dealloc` drops the cell in place and returns the block (`slab::dealloc`)
//!   on whichever thread released the last reference.
//! - A `Vtable` per `(F, S)`, which the untyped `Header` points to. Its entries poll, schedule,
//!   shut down, read the output, drop the join handle and deallocate.
//! - The poll harness (`Harness::poll`). It takes RUNNING and polls the future under
//!   `catch_unwind`, with a waker that borrows the runner's reference. On `Ready`, or on a
//!   panic, it stores the output or the panic and completes the task. On `Pending` it goes
//!   idle, and queues the task again as a yield if it was woken meanwhile. A task found
//!   cancelled, before the poll or when it returns `Pending`, has its future dropped and
//!   completes. `set_stage` drops the old stage where it lies, then writes the new one, and
//!   catches a panic from that drop.
//! - The waker: one static `RawWakerVTable` for every task type, whose data pointer is the
//!   header. A clone is a reference increment. `wake` turns the waker's own reference into
//!   the `Notified` that is queued; `wake_by_ref` takes a new reference for it.
//! - The `started` flag, which sits in the header's padding. A goroutine's worker sets it
//!   before each poll (`mark_started`: only a load once set). The shutdown steps read it
//!   (`Shared::unwind_share`, `finish_shutdown`). A goroutine bound from its spawn
//!   (`go_here`, an event-loop handler) has a `home` before it ever runs, and only this flag
//!   says whether it has started.
//!
//! Who touches what:
//! - `state` is atomic (`state.rs`).
//! - `vtable`, `kind`, `id` and `scheduler` are written once, by `new_task`.
//! - `home` is atomic: set at creation, or bound once by `try_bind`'s compare-exchange
//!   (`task/mod.rs`).
//! - `started` is a relaxed atomic written only on the goroutine's own worker. A read is
//!   exact on that thread, or once that worker is gone.
//! - The `owned` links are touched only under the owned list's shard lock.
//! - `stage` belongs to whoever holds RUNNING; after COMPLETE, to the completer or the
//!   `JoinHandle`.
//! - `join_waker` belongs to whichever side the JOIN_WAKER bit names.
//!
//! Invariant: the last reference is released only after the task has completed. The owned list
//! holds one reference until completion. `complete` takes the task off the list
//! (`Schedule::release`) and releases that reference together with the runner's. A shutdown step
//! that drains the list instead hands the same reference to `TaskRef::shutdown`. That call
//! completes an idle task itself, finds a complete one, or leaves completion to the runner, which
//! holds a reference of its own. `transition_to_idle` aborts rather than let an idle task give up
//! its last reference. So a `Waker`, `Notified` or `JoinHandle` dropped on some other thread never
//! deallocates a cell whose stage is still `Running`. The future is dropped only by `set_stage`, on
//! the thread that holds RUNNING. For a started goroutine that future holds a coroutine that must
//! not leave its thread, and that thread is its home worker: wakes are routed by `home`, and
//! `TaskRef::shutdown` requires it. The one exception is `finish_shutdown` cancelling a goroutine
//! whose worker exited without its shutdown step. `Goroutine::drop` covers that case: a suspended
//! coroutine found off its thread is leaked, not unwound. By the time `dealloc` runs, the stage
//! holds an output or nothing.
//!
//! Rejected: moving the future out of the cell and dropping the copy. Pin's guarantee lasts
//! until the destructor has run at the same address. A future that unlinks a node inside
//! itself in its drop (tokio's `Notify::notified`) then missed its node, and the list kept
//! pointing into the freed cell (review, session 32; see `set_stage`).

use std::future::Future;
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::ptr::NonNull;
use std::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};

use super::join::JoinError;
use super::state::{State, ToIdle, ToNotified, ToRunning};
use crate::loom::cell::UnsafeCell;
use crate::loom::sync::atomic::{AtomicBool, AtomicU32, Ordering::Relaxed};

/// `Header::home` of a task that may run on any worker.
pub(crate) const UNBOUND: u32 = u32::MAX;

/// What a scheduler provides to the tasks it owns.
pub(crate) trait Schedule: Send + Sync + 'static {
    /// Queues a task that must be polled. `is_yield`: it woke itself while running and goes to
    /// the back of its queue rather than the LIFO slot.
    fn schedule(&self, task: Notified, is_yield: bool);
    /// Removes a completing task from the owned list. Returns `true` if it was listed, in which
    /// case the caller releases the list's reference.
    fn release(&self, task: TaskRef) -> bool;
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// May be polled on any worker at every poll.
    Future,
    /// Bound to the worker of its first poll (`home`) for the rest of its life.
    Goroutine,
}

/// Intrusive links of the owned-task list; guarded by that list's shard lock.
pub(crate) struct Pointers {
    pub(crate) prev: UnsafeCell<Option<NonNull<Header>>>,
    pub(crate) next: UnsafeCell<Option<NonNull<Header>>>,
}

#[repr(C)]
pub(crate) struct Header {
    pub(crate) state: State,
    vtable: &'static Vtable,
    pub(crate) owned: Pointers,
    /// Worker index this task is bound to, or `UNBOUND`.
    pub(crate) home: AtomicU32,
    pub(crate) kind: Kind,
    /// A goroutine's first poll has begun (`mark_started`, on its worker). Read by that
    /// worker's shutdown step, which cancels goroutines that never started before it unwinds
    /// parked ones: an unbound one tells by its `home`, but one bound from its spawn (an
    /// event-loop handler, `go_here`) only by this. In the header's padding.
    started: AtomicBool,
    pub(crate) id: u64,
}

impl Header {
    /// Binds an unbound task to `worker`; `false` if another worker bound it first. The start
    /// of a goroutine (`worker::WorkerCtx::run_task`) and a worker's shutdown step, which
    /// claims goroutines nobody started in order to cancel them, race here: exactly one wins.
    pub(crate) fn try_bind(&self, worker: u32) -> bool {
        self.home
            .compare_exchange(UNBOUND, worker, Relaxed, Relaxed)
            .is_ok()
    }

    /// Records a goroutine's first poll; its worker calls it before each poll (a load once
    /// set).
    #[inline]
    pub(crate) fn mark_started(&self) {
        if !self.started.load(Relaxed) {
            self.started.store(true, Relaxed);
        }
    }

    /// Whether a goroutine's first poll has begun. Exact only on its own worker's thread, or
    /// once that worker is gone (the flag is written there, and nowhere else).
    pub(crate) fn started(&self) -> bool {
        self.started.load(Relaxed)
    }

    /// Whether `worker`, about to poll this goroutine, may: it is bound there already, or
    /// unbound and binds there now. Bound to another worker, it was claimed by that worker's
    /// shutdown step (routing never queues a goroutine on a worker it is not bound to), and
    /// the caller must only drop its reference. Checking only for "unbound and lost the
    /// bind" let a worker start a goroutine that the shutdown step had claimed before the
    /// worker looked (review, session 27).
    pub(crate) fn may_poll_on(&self, worker: u32) -> bool {
        let home = self.home.load(Relaxed);
        home == worker || (home == UNBOUND && self.try_bind(worker))
    }
}

// SAFETY: the header's non-atomic fields are only touched under the protocols described in
// `task/mod.rs` (owned links under the list lock; the rest immutable or atomic).
unsafe impl Send for Header {}
// SAFETY: as above.
unsafe impl Sync for Header {}

struct Vtable {
    poll: unsafe fn(NonNull<Header>),
    schedule: unsafe fn(NonNull<Header>),
    shutdown: unsafe fn(NonNull<Header>),
    try_read_output: unsafe fn(NonNull<Header>, *mut (), &Waker),
    drop_join_handle: unsafe fn(NonNull<Header>),
    dealloc: unsafe fn(NonNull<Header>),
}

enum Stage<F: Future> {
    Running(F),
    Finished(Result<F::Output, JoinError>),
    Consumed,
}

#[repr(C)]
struct Cell<F: Future, S> {
    header: Header,
    scheduler: S,
    stage: UnsafeCell<Stage<F>>,
    join_waker: UnsafeCell<Option<Waker>>,
}

/// An uncounted pointer to a task. Valid while the holder knows some reference is alive.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct TaskRef(pub(crate) NonNull<Header>);

// SAFETY: a TaskRef is only a pointer; all access goes through the header's protocols.
unsafe impl Send for TaskRef {}
// SAFETY: as above.
unsafe impl Sync for TaskRef {}

impl TaskRef {
    pub(crate) fn header(&self) -> &Header {
        // SAFETY: a TaskRef is only used while a counted reference keeps the cell alive.
        unsafe { self.0.as_ref() }
    }

    /// Cancels the task for runtime shutdown. The caller gives up one reference (the owned
    /// list's, which it removed from the list).
    ///
    /// # Safety
    ///
    /// The caller must own one counted reference, which this consumes, and, for a goroutine that
    /// has started, be on its home worker.
    pub(crate) unsafe fn shutdown(self) {
        // SAFETY: forwarded from the caller.
        unsafe { (self.header().vtable.shutdown)(self.0) }
    }
}

/// One counted reference that means "poll this task". Dropping it releases the reference.
pub(crate) struct Notified(TaskRef);

// SAFETY: the task's future is `Send` or, for started goroutines, only ever polled on its home
// worker, which the scheduler enforces by routing on `Header::home`.
unsafe impl Send for Notified {}

impl Notified {
    pub(crate) fn header(&self) -> &Header {
        self.0.header()
    }

    /// Gives up this reference as a raw pointer, for a slot that holds it as an atomic
    /// (`queue`'s LIFO slot); [`Notified::from_raw`] takes it back.
    pub(crate) fn into_raw(self) -> NonNull<Header> {
        ManuallyDrop::new(self).0 .0
    }

    /// Takes back a reference given up by [`Notified::into_raw`].
    ///
    /// # Safety
    ///
    /// `ptr` must come from `into_raw`, and be taken back once only.
    pub(crate) unsafe fn from_raw(ptr: NonNull<Header>) -> Notified {
        Notified(TaskRef(ptr))
    }

    /// Polls the task (or drops it if cancelled), consuming this reference.
    pub(crate) fn run(self) {
        let ptr = ManuallyDrop::new(self).0 .0;
        // SAFETY: we own the Notified reference, which `poll` consumes.
        unsafe { (ptr.as_ref().vtable.poll)(ptr) }
    }
}

impl Drop for Notified {
    fn drop(&mut self) {
        let h = self.0.header();
        if h.state.ref_dec(1) {
            // SAFETY: that was the last reference.
            unsafe { (h.vtable.dealloc)(self.0 .0) }
        }
    }
}

impl std::fmt::Debug for Notified {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Notified(task {})", self.header().id)
    }
}

/// Allocates a task. Returns its first `Notified`, the owned-list reference (as a raw
/// `TaskRef`: the caller must list it or cancel it) and the `JoinHandle`.
pub(crate) fn new_task<F, S>(
    future: F,
    scheduler: S,
    kind: Kind,
    id: u64,
    home: u32,
) -> (Notified, TaskRef, super::JoinHandle<F::Output>)
where
    F: Future + 'static,
    F::Output: 'static,
    S: Schedule,
{
    let cell = Cell {
        header: Header {
            state: State::new(),
            vtable: vtable::<F, S>(),
            owned: Pointers {
                prev: UnsafeCell::new(None),
                next: UnsafeCell::new(None),
            },
            home: AtomicU32::new(home),
            kind,
            started: AtomicBool::new(false),
            id,
        },
        scheduler,
        stage: UnsafeCell::new(Stage::Running(future)),
        join_waker: UnsafeCell::new(None),
    };
    let mem = super::slab::alloc(std::alloc::Layout::new::<Cell<F, S>>()).cast::<Cell<F, S>>();
    // SAFETY: `mem` is fresh memory with the size and alignment of a Cell<F, S>.
    unsafe { mem.as_ptr().write(cell) };
    let ptr = mem.cast::<Header>();
    let task = TaskRef(ptr);
    (Notified(task), task, super::JoinHandle::from_raw(task))
}

fn vtable<F: Future + 'static, S: Schedule>() -> &'static Vtable {
    &Vtable {
        poll: poll::<F, S>,
        schedule: schedule::<F, S>,
        shutdown: shutdown::<F, S>,
        try_read_output: try_read_output::<F, S>,
        drop_join_handle: drop_join_handle::<F, S>,
        dealloc: dealloc::<F, S>,
    }
}

impl Header {
    pub(crate) fn try_read_output<T>(
        &self,
        ptr: NonNull<Header>,
        dst: &mut Poll<Result<T, JoinError>>,
        waker: &Waker,
    ) {
        // SAFETY: the JoinHandle<T> owning this call was created for a task whose output is T.
        unsafe {
            (self.vtable.try_read_output)(
                ptr,
                (dst as *mut Poll<Result<T, JoinError>>).cast(),
                waker,
            )
        }
    }

    /// # Safety
    ///
    /// Called once, by the JoinHandle, which gives up its reference.
    pub(crate) unsafe fn drop_join_handle(&self, ptr: NonNull<Header>) {
        // SAFETY: forwarded from the caller.
        unsafe { (self.vtable.drop_join_handle)(ptr) }
    }
}

struct Harness<F: Future, S> {
    cell: NonNull<Cell<F, S>>,
    _p: PhantomData<(F, S)>,
}

impl<F: Future, S: Schedule> Harness<F, S> {
    /// # Safety
    ///
    /// `ptr` must point at the header of a live `Cell<F, S>`.
    unsafe fn from_raw(ptr: NonNull<Header>) -> Self {
        Harness {
            cell: ptr.cast(),
            _p: PhantomData,
        }
    }

    fn cell(&self) -> &Cell<F, S> {
        // SAFETY: from_raw's contract: the cell is alive while a harness exists.
        unsafe { self.cell.as_ref() }
    }

    fn header(&self) -> &Header {
        &self.cell().header
    }

    fn raw(&self) -> TaskRef {
        TaskRef(self.cell.cast())
    }

    /// Polls the future. Caller holds RUNNING.
    #[inline(always)]
    fn poll_future(&self, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.cell().stage.with_mut(|stage| {
            // SAFETY: RUNNING gives this thread exclusive access to the stage, and the future
            // is never moved out of the cell while it is Running.
            let stage = unsafe { &mut *stage };
            match stage {
                Stage::Running(f) => {
                    // SAFETY: the cell is heap-allocated and freed only after the future is
                    // dropped in place, so the future is pinned.
                    let f = unsafe { Pin::new_unchecked(f) };
                    f.poll(cx)
                }
                _ => unreachable!("runtime: polled a task that has finished"),
            }
        })
    }

    /// Replaces the stage, dropping the old one where it lies. Caller holds RUNNING (or has
    /// observed COMPLETE as the only reader).
    ///
    /// In place, not moved out first: a future is pinned from its first poll, and Pin's
    /// guarantee runs until its destructor has run at the same address. A future that links a
    /// node inside itself into a list elsewhere (tokio's `Notify::notified`, a semaphore's
    /// acquire) unlinks `&self` in its drop; moved first, it missed its own node, which the
    /// list kept pointing into the freed cell (review, session 32; test
    /// `a_pinned_future_is_dropped_where_it_was_polled`).
    fn set_stage(&self, new: Stage<F>) {
        self.cell().stage.with_mut(|stage| {
            // Dropping the future or an unread output may run user code that panics: contain
            // it. A drop that panics still drops the rest of the stage's fields while it
            // unwinds, so the memory holds nothing live afterwards either way.
            // SAFETY: exclusive access per the caller's contract; the stage holds a live value,
            // dropped once here and overwritten below without a second drop.
            let _ = catch_unwind(AssertUnwindSafe(|| unsafe {
                std::ptr::drop_in_place(stage)
            }));
            // SAFETY: as above; the old value was dropped just now.
            unsafe { std::ptr::write(stage, new) };
        });
    }

    fn poll(self) {
        match self.header().state.transition_to_running() {
            ToRunning::Success => {}
            ToRunning::Cancelled => return self.cancel_and_complete(1),
            ToRunning::Failed => return,
            ToRunning::Dealloc => return self.dealloc(),
        }
        let waker = ManuallyDrop::new(
            // SAFETY: a waker that borrows the runner's reference; ManuallyDrop keeps it from
            // releasing a count it never took. Clones count as usual.
            unsafe { Waker::from_raw(RawWaker::new(self.cell.as_ptr().cast(), &WAKER_VTABLE)) },
        );
        let mut cx = Context::from_waker(&waker);
        let res = catch_unwind(AssertUnwindSafe(|| self.poll_future(&mut cx)));
        match res {
            Ok(Poll::Ready(out)) => {
                self.set_stage(Stage::Finished(Ok(out)));
                self.complete(1);
            }
            Err(payload) => {
                self.set_stage(Stage::Finished(Err(JoinError::Panic(payload))));
                self.complete(1);
            }
            Ok(Poll::Pending) => match self.header().state.transition_to_idle() {
                ToIdle::Ok => {}
                ToIdle::OkNotified => self.cell().scheduler.schedule(Notified(self.raw()), true),
                ToIdle::Cancelled => self.cancel_and_complete(1),
            },
        }
    }

    fn cancel_and_complete(&self, runner_refs: usize) {
        self.set_stage(Stage::Consumed);
        self.set_stage(Stage::Finished(Err(JoinError::Cancelled)));
        self.complete(runner_refs);
    }

    /// Publishes the output and releases the runner's references (plus the owned list's).
    fn complete(&self, runner_refs: usize) {
        let header = self.header();
        // Leave the owned list, and count a goroutine's end, before COMPLETE is published:
        // whoever sees the task finished (its joiner, `is_finished`) then sees it gone from
        // `num_goroutines` too. Counted after, a joiner on another worker could see one
        // goroutine too many (review, session 20).
        let listed = self.cell().scheduler.release(self.raw());
        let prev = header.state.transition_to_complete();
        if !prev.is_join_interested() {
            // Nobody will read the output.
            self.set_stage(Stage::Consumed);
        } else if prev.is_join_waker_set() {
            self.cell().join_waker.with(|w| {
                // SAFETY: COMPLETE with JOIN_WAKER set gives the completer the waker field
                // until it clears the bit.
                if let Some(w) = unsafe { &*w } {
                    // Another executor's waker may panic: caught, so that the references
                    // below are still released and the worker lives on (the panic hook has
                    // printed it; review, session 24).
                    let _ = catch_unwind(AssertUnwindSafe(|| w.wake_by_ref()));
                }
            });
            let after = header.state.unset_join_waker_after_complete();
            if !after.is_join_interested() {
                // The handle went away meanwhile and left the waker to us. Its drop is another
                // executor's code and may panic: caught, as the wake above.
                let w = self.cell().join_waker.with_mut(|w| {
                    // SAFETY: we still own the field (we cleared JOIN_WAKER just now).
                    unsafe { (*w).take() }
                });
                let _ = catch_unwind(AssertUnwindSafe(move || drop(w)));
            }
        }
        if header.state.ref_dec(runner_refs + listed as usize) {
            self.dealloc();
        }
    }

    fn dealloc(&self) {
        // SAFETY: the last reference is gone, so nothing else reads the cell; it was written
        // by new_task into memory from slab::alloc of this very layout.
        unsafe {
            std::ptr::drop_in_place(self.cell.as_ptr());
            super::slab::dealloc(self.cell.cast(), std::alloc::Layout::new::<Cell<F, S>>());
        }
    }
}

/// # Safety (for all vtable functions)
///
/// `ptr` is the header of a live `Cell<F, S>`, and the caller holds the reference the function
/// documents.
unsafe fn poll<F: Future, S: Schedule>(ptr: NonNull<Header>) {
    // SAFETY: see above.
    unsafe { Harness::<F, S>::from_raw(ptr) }.poll()
}

unsafe fn schedule<F: Future, S: Schedule>(ptr: NonNull<Header>) {
    // SAFETY: see above; the caller's reference becomes the Notified.
    let h = unsafe { Harness::<F, S>::from_raw(ptr) };
    h.cell().scheduler.schedule(Notified(TaskRef(ptr)), false);
}

unsafe fn shutdown<F: Future, S: Schedule>(ptr: NonNull<Header>) {
    // SAFETY: see above; the caller gives one reference.
    let h = unsafe { Harness::<F, S>::from_raw(ptr) };
    if h.header().state.transition_to_shutdown() {
        h.cancel_and_complete(1);
    } else if h.header().state.ref_dec(1) {
        // Running elsewhere (it will see CANCELLED) or already complete.
        h.dealloc();
    }
}

unsafe fn try_read_output<F: Future, S: Schedule>(
    ptr: NonNull<Header>,
    dst: *mut (),
    waker: &Waker,
) {
    // SAFETY: see above; the caller is the JoinHandle.
    let h = unsafe { Harness::<F, S>::from_raw(ptr) };
    if !can_read_output(&h, waker) {
        return;
    }
    let out = h.cell().stage.with_mut(|stage| {
        // SAFETY: COMPLETE was observed with Acquire; only the JoinHandle touches the stage now.
        match std::mem::replace(unsafe { &mut *stage }, Stage::Consumed) {
            Stage::Finished(out) => out,
            _ => panic!("JoinHandle polled after it returned the output"),
        }
    });
    // SAFETY: the JoinHandle passed a `Poll<Result<F::Output, JoinError>>`.
    unsafe { *dst.cast::<Poll<Result<F::Output, JoinError>>>() = Poll::Ready(out) };
}

fn can_read_output<F: Future, S: Schedule>(h: &Harness<F, S>, waker: &Waker) -> bool {
    let state = &h.header().state;
    let snap = state.load();
    if snap.is_complete() {
        return true;
    }
    let field = &h.cell().join_waker;
    if snap.is_join_waker_set() {
        let same = field.with(|w| {
            // SAFETY: while JOIN_WAKER is set only shared reads happen (ours and the completer's).
            unsafe { &*w }.as_ref().is_some_and(|w| w.will_wake(waker))
        });
        if same {
            return false;
        }
        if state.unset_join_waker().is_err() {
            return true;
        }
    }
    // JOIN_WAKER is clear: the field is ours.
    field.with_mut(|w| {
        // SAFETY: exclusive while JOIN_WAKER is clear and we are the JoinHandle.
        unsafe { *w = Some(waker.clone()) }
    });
    state.set_join_waker().is_err()
}

unsafe fn drop_join_handle<F: Future, S: Schedule>(ptr: NonNull<Header>) {
    // SAFETY: see above; the caller gives the JoinHandle's reference.
    let h = unsafe { Harness::<F, S>::from_raw(ptr) };
    let prev = h.header().state.unset_join_interested();
    if prev.is_complete() {
        // The output is ours to drop.
        h.set_stage(Stage::Consumed);
    }
    if !(prev.is_complete() && prev.is_join_waker_set()) {
        // The waker field is ours (the completer owns it only while COMPLETE and JOIN_WAKER).
        let w = h.cell().join_waker.with_mut(|w| {
            // SAFETY: exclusive per the rule above.
            unsafe { (*w).take() }
        });
        drop(w);
    }
    if h.header().state.ref_dec(1) {
        h.dealloc();
    }
}

unsafe fn dealloc<F: Future, S: Schedule>(ptr: NonNull<Header>) {
    // SAFETY: see above; the caller released the last reference.
    unsafe { Harness::<F, S>::from_raw(ptr) }.dealloc()
}

// --- the waker: one static vtable for every task type -------------------------------------

static WAKER_VTABLE: RawWakerVTable =
    RawWakerVTable::new(waker_clone, waker_wake, waker_wake_by_ref, waker_drop);

fn header<'a>(p: *const ()) -> &'a Header {
    // SAFETY: a waker's data pointer is the header of a task it holds a reference to.
    unsafe { &*p.cast::<Header>() }
}

unsafe fn waker_clone(p: *const ()) -> RawWaker {
    header(p).state.ref_inc();
    RawWaker::new(p, &WAKER_VTABLE)
}

unsafe fn waker_wake(p: *const ()) {
    let h = header(p);
    let ptr = NonNull::from(h);
    match h.state.transition_to_notified_by_val() {
        // SAFETY: the waker's reference became the Notified reference.
        ToNotified::Submit => unsafe { (h.vtable.schedule)(ptr) },
        ToNotified::DoNothing => {}
        // SAFETY: the waker held the last reference.
        ToNotified::Dealloc => unsafe { (h.vtable.dealloc)(ptr) },
    }
}

unsafe fn waker_wake_by_ref(p: *const ()) {
    let h = header(p);
    if h.state.transition_to_notified_by_ref() == ToNotified::Submit {
        // SAFETY: the transition took a new reference for the Notified.
        unsafe { (h.vtable.schedule)(NonNull::from(h)) }
    }
}

unsafe fn waker_drop(p: *const ()) {
    let h = header(p);
    if h.state.ref_dec(1) {
        // SAFETY: that was the last reference.
        unsafe { (h.vtable.dealloc)(NonNull::from(h)) }
    }
}
