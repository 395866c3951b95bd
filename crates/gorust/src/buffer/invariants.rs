//! A check of the chain's invariants (module header), for tests: the model test runs it after
//! every operation, so a bookkeeping slip shows where it happens rather than as wrong bytes
//! later.

use super::link::LinkBuffer;

impl LinkBuffer {
    /// Checks the buffer's internal invariants and describes the first one broken. Meant for
    /// tests (O(nodes)); a correct buffer always passes.
    #[doc(hidden)]
    pub fn check_invariants(&self) -> Result<(), String> {
        self.check_scan()?;
        let (idx, off) = (self.rd_node.get(), self.rd_off.get());
        if self.nodes.is_empty() {
            return match (idx, off, self.len(), self.pending) {
                (0, 0, 0, 0) => Ok(()),
                s => Err(format!(
                    "no node but (rd_node, rd_off, len, pending) = {s:?}"
                )),
            };
        }
        let Some(cur) = self.nodes.get(idx) else {
            return Err(format!("cursor at node {idx} of {}", self.nodes.len()));
        };
        if off < cur.start() || off > cur.flushed() {
            return Err(format!(
                "cursor offset {off} outside node {idx}'s readable [{}, {}]",
                cur.start(),
                cur.flushed()
            ));
        }
        let mut readable = cur.flushed() - off;
        let mut pending = 0;
        let mut seen_pending = false;
        let last = self.nodes.len() - 1;
        for (i, n) in self.nodes.iter().enumerate() {
            if n.start() > n.flushed() || n.flushed() > n.written() {
                return Err(format!("node {i}: cursors out of order"));
            }
            if i > idx {
                readable += n.flushed() - n.start();
                if n.holds_nothing() && i != last {
                    return Err(format!(
                        "node {i} of {last} holds nothing but is not the tail"
                    ));
                }
            }
            if seen_pending && n.flushed() > n.start() {
                return Err(format!("node {i} has readable bytes after pending ones"));
            }
            pending += n.written() - n.flushed();
            seen_pending |= n.written() > n.flushed();
        }
        if readable != self.len() {
            return Err(format!(
                "len is {} but {readable} bytes are readable",
                self.len()
            ));
        }
        if pending != self.pending {
            return Err(format!(
                "pending is {} but {pending} bytes are",
                self.pending
            ));
        }
        Ok(())
    }

    /// The run a failed `until` recorded is readable and holds no delimiter.
    fn check_scan(&self) -> Result<(), String> {
        let (delim, clean) = self.scan.get().parts();
        if clean > self.len() {
            return Err(format!(
                "until's clean run is {clean} bytes but {} are readable",
                self.len()
            ));
        }
        let mut seen = 0;
        for run in self.runs(clean) {
            if let Some(i) = run.iter().position(|&b| b == delim) {
                return Err(format!(
                    "byte {} holds {delim}, inside until's clean run of {clean}",
                    seen + i
                ));
            }
            seen += run.len();
        }
        Ok(())
    }
}
