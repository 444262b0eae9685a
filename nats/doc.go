// Package natsconf holds no code: it is where the tests of Herald's NATS
// server configs (single.conf, cluster.conf, accounts.conf) and of
// compose.yaml live. The tests build nats-server from the module and run
// real server processes from these files.
package natsconf
