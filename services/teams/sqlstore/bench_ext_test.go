package sqlstore_test

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/switchyard/switchyard/internal/pgtest"
	"github.com/switchyard/switchyard/services/teams"
	"github.com/switchyard/switchyard/services/teams/sqlstore"
)

func benchStore(b *testing.B, s teams.Store) {
	b.Cleanup(func() { _ = s.Close() })
	b.Run("Get", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := s.Get(b.Context(), "Chicago"); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("Put", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			if _, _, err := s.Put(b.Context(), teams.Team{City: fmt.Sprintf("Bench %d", i%1000), Nickname: "N"}); err != nil {
				b.Fatal(err)
			}
		}
	})
	// Concurrent writers (16 per P): on SQLite they share commits.
	b.Run("PutParallel", func(b *testing.B) {
		b.SetParallelism(16)
		var n atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				i := n.Add(1)
				if _, _, err := s.Put(b.Context(), teams.Team{City: fmt.Sprintf("Bench %d", i%1000), Nickname: "N"}); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

func BenchmarkSQLite(b *testing.B) {
	s, err := sqlstore.OpenSQLite(b.Context(), b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	benchStore(b, s)
}

// The private test server runs with fsync=off: its Put is no measure of a
// durable PostgreSQL.
func BenchmarkPostgres(b *testing.B) {
	s, err := sqlstore.OpenPostgres(b.Context(), pgtest.Database(b))
	if err != nil {
		b.Fatal(err)
	}
	benchStore(b, s)
}
