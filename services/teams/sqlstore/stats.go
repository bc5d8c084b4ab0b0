package sqlstore

import "database/sql"

// PoolStats reports the statistics of the store's database/sql pools, by
// name: "read" and "write", or one "rw" when they are the same pool
// (PostgreSQL). The metrics read it at each scrape (telemetry.PoolStatser).
func (s *Store) PoolStats() map[string]sql.DBStats {
	if s.read == s.write {
		return map[string]sql.DBStats{"rw": s.write.Stats()}
	}
	return map[string]sql.DBStats{"read": s.read.Stats(), "write": s.write.Stats()}
}
