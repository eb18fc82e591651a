;; Exports the contract's interface name, but without its functions.
(component
  (instance $rules)
  (export "checkallsslcerts:policy/rules@0.1.0" (instance $rules)))
