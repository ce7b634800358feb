package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
	"testing"

	"github.com/wisehosting/wisehosting/schema"
)

// TestOpenAPIRoute: GET /openapi.json serves the embedded document as
// JSON, without credentials, even with a metrics token set, and the route
// is recorded like every other (the document describes itself).
func TestOpenAPIRoute(t *testing.T) {
	srv := newTestServer(t, Options{MetricsToken: "metrics-secret"})
	for _, tc := range []struct {
		name   string
		method string
		status int
	}{
		{name: "GET serves the document", method: http.MethodGet, status: http.StatusOK},
		{name: "POST is not allowed", method: http.MethodPost, status: http.StatusMethodNotAllowed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body, hdr := do(t, tc.method, srv.URL+OpenAPIPath, "", nil)
			if code != tc.status {
				t.Fatalf("%s %s: status %d, want %d: %s", tc.method, OpenAPIPath, code, tc.status, body)
			}
			if tc.status != http.StatusOK {
				return
			}
			if ct := hdr.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q, want application/json", ct)
			}
			if !bytes.Equal([]byte(body), schema.OpenAPI) {
				t.Errorf("the body (%d bytes) is not schema.OpenAPI (%d bytes)", len(body), len(schema.OpenAPI))
			}
			var doc struct {
				OpenAPI string         `json:"openapi"`
				Paths   map[string]any `json:"paths"`
			}
			if err := json.Unmarshal([]byte(body), &doc); err != nil {
				t.Fatalf("the document is not JSON: %v", err)
			}
			if _, ok := doc.Paths[OpenAPIPath]; !ok {
				t.Errorf("the document does not describe %s itself", OpenAPIPath)
			}
		})
	}
}

func TestOpenAPIRouteIsRecorded(t *testing.T) {
	s, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(s.Routes(), Route{Method: http.MethodGet, Path: OpenAPIPath}) {
		t.Errorf("Routes() = %v, want it to hold GET %s", s.Routes(), OpenAPIPath)
	}
}

// TestOpenAPIDocumentIsCanonical: schema/openapi.json is indented with two
// spaces and ends with a newline, as the generator writes it, so diffs of
// it stay readable.
func TestOpenAPIDocumentIsCanonical(t *testing.T) {
	var buf bytes.Buffer
	if err := json.Indent(&buf, bytes.TrimSpace(schema.OpenAPI), "", "  "); err != nil {
		t.Fatalf("schema/openapi.json is not JSON: %v", err)
	}
	buf.WriteByte('\n')
	if !bytes.Equal(buf.Bytes(), schema.OpenAPI) {
		t.Errorf("schema/openapi.json is not indented with two spaces (json.Indent) and newline-terminated")
	}
}
