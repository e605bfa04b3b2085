import GRDB

extension LeaseStore {
    /// The schema, one migration per change; a migration once shipped is never edited.
    ///
    /// The database itself refuses what must never happen, whatever the broker's code does:
    /// - `lease_slot_held`: a (host, slot_index) is held by at most one live lease;
    /// - a live lease (granted, active, draining) always names its host and slot, so it cannot
    ///   slip past that index with a NULL;
    /// - `lease.id` is the primary key and `sequence` only counts up, so an id never repeats;
    /// - `event.id` is AUTOINCREMENT: never reused, even after the newest rows are deleted.
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1: lease, event, sequence") { db in
            try db.execute(sql: """
                CREATE TABLE lease (
                  id TEXT PRIMARY KEY NOT NULL,
                  service TEXT NOT NULL,
                  frontend TEXT NOT NULL,
                  host TEXT,
                  slot_index INTEGER CHECK (slot_index >= 0),
                  state TEXT NOT NULL
                    CHECK (state IN ('requested', 'granted', 'active', 'draining', 'released', 'revoked')),
                  tasks TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(tasks)),
                  requested_at INTEGER NOT NULL,
                  expires_at INTEGER NOT NULL,
                  drain_reason TEXT CHECK (drain_reason IN ('scale-down', 'preemption', 'maintenance')),
                  drain_deadline INTEGER,
                  revocation TEXT CHECK (revocation IN
                    ('host-failed', 'task-died', 'ttl-expired', 'drain-deadline-passed', 'spawn-failed')),
                  CHECK (state NOT IN ('granted', 'active', 'draining')
                         OR (host IS NOT NULL AND slot_index IS NOT NULL)),
                  CHECK ((drain_reason IS NULL) = (drain_deadline IS NULL)),
                  CHECK ((state = 'revoked') = (revocation IS NOT NULL))
                ) STRICT;

                CREATE UNIQUE INDEX lease_slot_held ON lease (host, slot_index)
                  WHERE state IN ('granted', 'active', 'draining');
                CREATE INDEX lease_state ON lease (state);

                CREATE TABLE event (
                  id INTEGER PRIMARY KEY AUTOINCREMENT,
                  time INTEGER NOT NULL,
                  kind TEXT NOT NULL,
                  lease_id TEXT REFERENCES lease (id),
                  service TEXT,
                  host TEXT,
                  from_state TEXT,
                  to_state TEXT,
                  reason TEXT NOT NULL,
                  details TEXT CHECK (details IS NULL OR json_valid(details))
                ) STRICT;
                CREATE INDEX event_lease ON event (lease_id, id);

                CREATE TABLE sequence (
                  name TEXT PRIMARY KEY NOT NULL,
                  value INTEGER NOT NULL CHECK (value >= 0)
                ) STRICT;
                INSERT INTO sequence (name, value) VALUES ('lease', 0);
                CREATE TRIGGER sequence_only_counts_up BEFORE UPDATE OF value ON sequence
                  WHEN NEW.value <= OLD.value
                  BEGIN SELECT RAISE(ABORT, 'sequence only counts up'); END;
                """)
        }
        migrator.registerMigration("v2: lease endpoint") { db in
            try db.execute(sql: "ALTER TABLE lease ADD COLUMN endpoint TEXT")
        }
        migrator.registerMigration("v3: frontend") { db in
            try db.execute(sql: """
                CREATE TABLE frontend (
                  name TEXT PRIMARY KEY NOT NULL,
                  manifest_path TEXT NOT NULL,
                  registered_at INTEGER NOT NULL
                ) STRICT;
                """)
        }
        migrator.registerMigration("v4: cordoned hosts") { db in
            try db.execute(sql: "CREATE TABLE cordon (host TEXT PRIMARY KEY NOT NULL, since INTEGER NOT NULL) STRICT")
        }
        migrator.registerMigration("v5: grant time, worker drain order") { db in
            // A lease granted before this migration counts its readiness from its request, as before.
            try db.execute(sql: """
                ALTER TABLE lease ADD COLUMN granted_at INTEGER;
                ALTER TABLE lease ADD COLUMN worker_draining INTEGER NOT NULL DEFAULT 0 CHECK (worker_draining IN (0, 1));
                """)
        }
        migrator.registerMigration("v6: revocation pool-restarted") { db in
            // SQLite cannot change a CHECK: the table is made anew (foreign keys are checked after).
            try db.execute(sql: """
                CREATE TABLE lease_v6 (
                  id TEXT PRIMARY KEY NOT NULL,
                  service TEXT NOT NULL,
                  frontend TEXT NOT NULL,
                  host TEXT,
                  slot_index INTEGER CHECK (slot_index >= 0),
                  state TEXT NOT NULL
                    CHECK (state IN ('requested', 'granted', 'active', 'draining', 'released', 'revoked')),
                  tasks TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(tasks)),
                  requested_at INTEGER NOT NULL,
                  expires_at INTEGER NOT NULL,
                  drain_reason TEXT CHECK (drain_reason IN ('scale-down', 'preemption', 'maintenance')),
                  drain_deadline INTEGER,
                  revocation TEXT CHECK (revocation IN
                    ('host-failed', 'task-died', 'ttl-expired', 'drain-deadline-passed', 'spawn-failed', 'pool-restarted')),
                  endpoint TEXT,
                  granted_at INTEGER,
                  worker_draining INTEGER NOT NULL DEFAULT 0 CHECK (worker_draining IN (0, 1)),
                  CHECK (state NOT IN ('granted', 'active', 'draining')
                         OR (host IS NOT NULL AND slot_index IS NOT NULL)),
                  CHECK ((drain_reason IS NULL) = (drain_deadline IS NULL)),
                  CHECK ((state = 'revoked') = (revocation IS NOT NULL))
                ) STRICT;
                INSERT INTO lease_v6 (id, service, frontend, host, slot_index, state, tasks, requested_at, expires_at,
                                      drain_reason, drain_deadline, revocation, endpoint, granted_at, worker_draining)
                  SELECT id, service, frontend, host, slot_index, state, tasks, requested_at, expires_at,
                         drain_reason, drain_deadline, revocation, endpoint, granted_at, worker_draining FROM lease;
                DROP TABLE lease;
                ALTER TABLE lease_v6 RENAME TO lease;
                CREATE UNIQUE INDEX lease_slot_held ON lease (host, slot_index)
                  WHERE state IN ('granted', 'active', 'draining');
                CREATE INDEX lease_state ON lease (state);
                """)
        }
        migrator.registerMigration("v7: lease secret") { db in
            // Leases granted before it have none: their workers serve anyone, as before.
            try db.execute(sql: "ALTER TABLE lease ADD COLUMN secret TEXT CHECK (secret IS NULL OR length(secret) = 43)")
        }
        return migrator
    }
}
