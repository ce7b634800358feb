// Package schema ships the files that define WiseHosting's contracts outside
// Go: the Postgres migrations (tern format, embedded into the binary), the
// plugin protobuf definitions, the HCL configuration reference and the
// OpenAPI document of the core's HTTP API.
package schema

import "embed"

// Migrations holds migrations/NNN_name.sql, applied in order by core/store.
//
//go:embed migrations/*.sql
var Migrations embed.FS

// OpenAPI is openapi.json: the OpenAPI 3.1 document of every HTTP route the
// core serves (served at GET /openapi.json; core/daemon's test checks it
// against the mounted routes).
//
//go:embed openapi.json
var OpenAPI []byte
