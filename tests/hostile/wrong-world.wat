;; A component that is not a policy at all: it exports something else.
(component
  (instance $api)
  (export "example:greeter/api@1.0.0" (instance $api)))
