package api

import (
	"net/http"
	"strconv"

	"github.com/uptrace/bunrouter"

	"github.com/wisehosting/wisehosting/schema"
)

// OpenAPIPath is where the core serves its OpenAPI document.
const OpenAPIPath = "/openapi.json"

// openAPI serves schema.OpenAPI, the OpenAPI 3.1 document of every route
// the core serves; it is public, like the API's shape it describes.
func openAPI(w http.ResponseWriter, _ bunrouter.Request) error {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(schema.OpenAPI)))
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	_, err := w.Write(schema.OpenAPI)
	return err
}
