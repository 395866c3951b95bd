module gorust-bench

go 1.19
