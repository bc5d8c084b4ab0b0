// Package scale tests Switchyard scaled out, with real processes on
// loopback: a private PostgreSQL, two switchyard replicas and nginx
// (deploy/nginx/switchyard.conf) in front; two processes sharing one
// SQLite data directory; and rolling upgrades, with the previous schema's
// binary built from git.
//
// The tests carry the build tag scale; run them with `make test-scale`
// (part of `make test`). They need PostgreSQL's and nginx's Debian
// packages (`make deps`) and, for the upgrade test, the git history.
package scale
