;; Contract 0.2.0. Breaks invariant 5: orders the group "lan", whose names the CA cannot issue
;; for. evaluate returns ok(plan { services = [], orders = [lan], notices = [] }) for every facts.
(module
  (memory (export "memory") 1)
  ;; PRELUDE
  ;; result<plan, string> at 0x300: tag 0 (ok); plan { services @+4, orders @+12, notices @+20 }
  (data (i32.const 0x300)
    "\00\00\00\00" "\00\00\00\00" "\00\00\00\00" "\00\06\00\00" "\01\00\00\00" "\00\00\00\00" "\00\00\00\00")
  ;; order-request at 0x600: { group = "lan" @0x700 }
  (data (i32.const 0x600) "\00\07\00\00" "\03\00\00\00")
  (data (i32.const 0x700) "lan")
  (func (export "checkallsslcerts:policy/rules@0.2.0#evaluate") (param i32) (result i32)
    (i32.const 0x300)))
