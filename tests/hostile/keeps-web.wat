;; Contract 0.2.0. Breaks invariant 3: keeps a service named "web" whatever its certificate (a
;; policy that forgot to look). evaluate returns ok(plan { services = [web: keep], orders = [],
;; notices = [] }) for every facts.
(module
  (memory (export "memory") 1)
  ;; PRELUDE
  ;; result<plan, string> at 0x300: tag 0 (ok); plan { services @+4, orders @+12, notices @+20 }
  (data (i32.const 0x300)
    "\00\00\00\00" "\00\04\00\00" "\01\00\00\00" "\00\00\00\00" "\00\00\00\00" "\00\00\00\00" "\00\00\00\00")
  ;; service-plan at 0x400: { service = "web" @0x500, decision = keep, reasons = [] }
  (data (i32.const 0x400) "\00\05\00\00" "\03\00\00\00" "\00\00\00\00" "\00\00\00\00" "\00\00\00\00")
  (data (i32.const 0x500) "web")
  (func (export "checkallsslcerts:policy/rules@0.2.0#evaluate") (param i32) (result i32)
    (i32.const 0x300)))
