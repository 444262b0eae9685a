// Package payload declares, once, the Go type of every CloudEvent's data
// that crosses the bus. Each type has a JSON Schema in schemas/data/ named
// after its event type, with an example that the tests validate. Nothing
// here imports NATS.
package payload
