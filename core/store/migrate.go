package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/tern/v2/migrate"

	"github.com/wisehosting/wisehosting/schema"
)

// VersionTable is the table where tern records the applied schema version.
const VersionTable = "schema_version"

// ErrSchemaNewer means the database was migrated by a newer binary; this one
// refuses to run against it rather than misread columns it does not know.
var ErrSchemaNewer = errors.New("database schema is newer than this binary")

// MigrationStatus describes the schema version of a database.
type MigrationStatus struct {
	// Current is the version applied to the database (0 = empty).
	Current int32
	// Latest is the highest migration this binary ships.
	Latest int32
	// Pending lists the names of migrations not yet applied.
	Pending []string
}

func newMigrator(ctx context.Context, conn *pgx.Conn) (*migrate.Migrator, error) {
	m, err := migrate.NewMigrator(ctx, conn, VersionTable)
	if err != nil {
		return nil, fmt.Errorf("store: migrator: %w", err)
	}
	sub, err := fs.Sub(schema.Migrations, "migrations")
	if err != nil {
		return nil, fmt.Errorf("store: migrations: %w", err)
	}
	if err := m.LoadMigrations(sub); err != nil {
		return nil, fmt.Errorf("store: load migrations: %w", err)
	}
	return m, nil
}

// Migrate applies every pending migration under tern's advisory lock (so
// several cores starting at once apply each migration exactly once). It fails
// fast, changing nothing, when the database is newer than this binary.
func Migrate(ctx context.Context, connString string) (MigrationStatus, error) {
	conn, err := pgx.Connect(ctx, connString)
	if err != nil {
		return MigrationStatus{}, fmt.Errorf("store: migrate: connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	m, err := newMigrator(ctx, conn)
	if err != nil {
		return MigrationStatus{}, err
	}
	st, err := status(ctx, m)
	if err != nil {
		return st, err
	}
	if err := m.Migrate(ctx); err != nil {
		return st, fmt.Errorf("store: migrate: %w", err)
	}
	return status(ctx, m)
}

// Status reports the schema version without changing anything. A database
// newer than the binary is reported with ErrSchemaNewer.
func Status(ctx context.Context, connString string) (MigrationStatus, error) {
	conn, err := pgx.Connect(ctx, connString)
	if err != nil {
		return MigrationStatus{}, fmt.Errorf("store: migration status: connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	m, err := newMigrator(ctx, conn)
	if err != nil {
		return MigrationStatus{}, err
	}
	return status(ctx, m)
}

func status(ctx context.Context, m *migrate.Migrator) (MigrationStatus, error) {
	cur, err := m.GetCurrentVersion(ctx)
	if err != nil {
		return MigrationStatus{}, fmt.Errorf("store: schema version: %w", err)
	}
	st := MigrationStatus{Current: cur, Latest: int32(len(m.Migrations))}
	for _, mig := range m.Migrations {
		if mig.Sequence > cur {
			st.Pending = append(st.Pending, mig.Name)
		}
	}
	if cur > st.Latest {
		return st, fmt.Errorf("store: database is at schema version %d but this binary knows only %d: %w",
			cur, st.Latest, ErrSchemaNewer)
	}
	return st, nil
}
