package mail

import (
	"crypto/x509"
	"fmt"
	"io"
	"os"
)

// MaxCAFile bounds a CA file LoadCertPool reads.
const MaxCAFile = 1 << 20

// LoadCertPool reads the PEM certificates of a CA file (at most MaxCAFile
// bytes) into a pool for Options.RootCAs. Its errors name the file.
func LoadCertPool(path string) (*x509.CertPool, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	pem, err := io.ReadAll(io.LimitReader(f, MaxCAFile+1))
	if err != nil {
		return nil, err
	}
	if len(pem) > MaxCAFile {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, MaxCAFile)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return pool, nil
}
