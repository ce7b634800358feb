// Package schema ships the files that define WiseHosting's contracts outside
// Go: the Postgres migrations (tern format, embedded into the binary), the
// plugin protobuf definitions and the HCL configuration reference.
package schema

import "embed"

// Migrations holds migrations/NNN_name.sql, applied in order by core/store.
//
//go:embed migrations/*.sql
var Migrations embed.FS
