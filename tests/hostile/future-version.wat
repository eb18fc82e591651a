;; A component built for a contract version this host does not know.
(component
  (instance $rules)
  (export "checkallsslcerts:policy/rules@9.0.0" (instance $rules)))
