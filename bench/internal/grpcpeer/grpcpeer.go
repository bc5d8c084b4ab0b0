// Package grpcpeer is what the benchmark's grpc-go peers (grpcteams,
// grpcref) share: the admin token and TLS taken as switchyard's flags
// take them, and the serving loop benchrun drives.
package grpcpeer

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// Token reads the bearer token that enables PutTeam from file (as
// switchyard's -admin-token-file); none when file is "".
func Token(file string) (string, error) {
	if file == "" {
		return "", nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// Serve listens on addr, cleartext or, with cert and key, TLS (ALPN h2),
// prints the bound address on stdout, serves what register puts on the
// server, and stops on SIGINT or SIGTERM.
func Serve(addr, cert, key string, register func(*grpc.Server)) error {
	var opts []grpc.ServerOption
	if (cert == "") != (key == "") {
		return errors.New("-tls-cert and -tls-key go together")
	}
	if cert != "" {
		creds, err := credentials.NewServerTLSFromFile(cert, key)
		if err != nil {
			return err
		}
		opts = append(opts, grpc.Creds(creds))
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	s := grpc.NewServer(opts...)
	register(s)
	fmt.Println(ln.Addr().String())
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
		<-sig
		s.Stop()
	}()
	return s.Serve(ln)
}
