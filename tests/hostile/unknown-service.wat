;; evaluate returns ok(plan) deciding on a service named "nope" only.
(module
  (memory (export "memory") 1)
  ;; PRELUDE
  ;; result<plan, string> at 0x300: tag 0 (ok); plan { services @+4, order @+12, notices @+16 }
  (data (i32.const 0x300)
    "\00\00\00\00" "\00\04\00\00" "\01\00\00\00" "\00\00\00\00" "\00\00\00\00" "\00\00\00\00")
  ;; service-plan at 0x400: { service = "nope" @0x500, decision = keep, reasons = [] }
  (data (i32.const 0x400) "\00\05\00\00" "\04\00\00\00" "\00\00\00\00" "\00\00\00\00" "\00\00\00\00")
  (data (i32.const 0x500) "nope")
  (func (export "checkallsslcerts:policy/rules@0.1.0#evaluate") (param i32) (result i32)
    (i32.const 0x300)))
