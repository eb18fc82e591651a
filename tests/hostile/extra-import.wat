;; A component that claims the contract but also imports storage outside the policy's WASI.
(component
  (import "wasi:keyvalue/store@0.2.0-draft" (instance))
  (instance $rules)
  (export "checkallsslcerts:policy/rules@0.1.0" (instance $rules)))
