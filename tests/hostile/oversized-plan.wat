;; evaluate returns ok(plan) with 200,000 (empty, info-level) notices: within the module's own
;; memory, so it lifts, but far over the plan-size limit.
(module
  (memory (export "memory") 80)
  ;; PRELUDE
  (data (i32.const 0x300)
    "\00\00\00\00" "\00\00\00\00" "\00\00\00\00" "\00\00\00\00" "\00\00\01\00" "\40\0d\03\00")
  (func (export "checkallsslcerts:policy/rules@0.1.0#evaluate") (param i32) (result i32)
    (i32.const 0x300)))
