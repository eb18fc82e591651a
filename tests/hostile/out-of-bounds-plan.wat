;; evaluate returns a plan whose notice list claims 2^31-1 entries: lifting must fail cleanly
;; instead of allocating.
(module
  (memory (export "memory") 1)
  ;; PRELUDE
  (data (i32.const 0x300)
    "\00\00\00\00" "\00\00\00\00" "\00\00\00\00" "\00\00\00\00" "\00\00\01\00" "\ff\ff\ff\7f")
  (func (export "checkallsslcerts:policy/rules@0.1.0#evaluate") (param i32) (result i32)
    (i32.const 0x300)))
