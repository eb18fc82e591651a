;; Contract 0.2.0. Breaks invariant 4 and 5: always orders the "hostname" group, even while
;; disable_auto_hostname_certificate is set or no CA is configured. evaluate returns
;; ok(plan { services = [], orders = [hostname], notices = [] }) for every facts.
(module
  (memory (export "memory") 1)
  ;; PRELUDE
  ;; result<plan, string> at 0x300: tag 0 (ok); plan { services @+4, orders @+12, notices @+20 }
  (data (i32.const 0x300)
    "\00\00\00\00" "\00\00\00\00" "\00\00\00\00" "\00\06\00\00" "\01\00\00\00" "\00\00\00\00" "\00\00\00\00")
  ;; order-request at 0x600: { group = "hostname" @0x700 }
  (data (i32.const 0x600) "\00\07\00\00" "\08\00\00\00")
  (data (i32.const 0x700) "hostname")
  (func (export "checkallsslcerts:policy/rules@0.2.0#evaluate") (param i32) (result i32)
    (i32.const 0x300)))
