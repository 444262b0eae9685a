// Package deploytest holds no code: it is where the tests of Herald's
// deployment live: the NATS server configs in nats/ (single.conf,
// cluster.conf, accounts.conf), compose.yaml, the 3-node cluster and the
// fault suite that runs the five service binaries against real nats-server
// processes. The tests build nats-server and the services from the module
// and run them from these files. It sits under services/ so that it may
// import services/internal/... (Go's internal rule); nats/ keeps only the
// configs.
package deploytest
