package cli

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/pflag"
)

// HTTPS. --tls-cert and --tls-key serve a certificate the user has (say,
// from Let's Encrypt). --tls self-signed makes one under DATA/tls for this
// machine's names and addresses, so that a phone on the same network can
// use the camera page (browsers allow the camera only on https or
// localhost). It is made the way mkcert does it: a small local CA
// (ca.pem, which a phone or browser is told to trust) signs the server's
// certificate (cert.pem, with the CA after it). The CA is kept across
// restarts and address changes, so a device that trusts it keeps trusting
// the server; the server certificate is re-issued when the machine's
// addresses change or it nears expiry.

// Lifetimes of the self-signed certificates. 397 days is the most Apple
// platforms accept for a server certificate.
const (
	caLifetime      = 10 * 365 * 24 * time.Hour
	leafLifetime    = 397 * 24 * time.Hour
	renewBefore     = 30 * 24 * time.Hour
	tlsSelfSigned   = "self-signed"
	selfSignedDir   = "tls"
	caCertFile      = "ca.pem"
	caKeyFile       = "ca-key.pem"
	serverCertFile  = "cert.pem"
	serverKeyFile   = "key.pem"
	certClockSkewed = time.Hour // NotBefore this far back, for devices whose clocks lag
)

func (f *apiFlags) registerTLS(fl *pflag.FlagSet) {
	fl.StringVar(&f.tlsMode, "tls", "", "\"self-signed\": serve HTTPS with a certificate made (and kept) under DATA/tls for this machine's addresses and names")
	fl.StringVar(&f.tlsCert, "tls-cert", "", "serve HTTPS with this PEM certificate (chain) file; needs --tls-key")
	fl.StringVar(&f.tlsKey, "tls-key", "", "PEM private key of --tls-cert")
}

// setupTLS returns the TLS configuration the flags ask for (nil for plain
// HTTP) and the banner's lines about the certificate.
func (f *apiFlags) setupTLS(dataDir string) (*tls.Config, string, error) {
	switch {
	case f.tlsMode != "" && f.tlsMode != tlsSelfSigned && f.tlsMode != "off":
		return nil, "", fmt.Errorf("--tls %q: the only value is %q (or give --tls-cert and --tls-key)", f.tlsMode, tlsSelfSigned)
	case (f.tlsCert == "") != (f.tlsKey == ""):
		return nil, "", errors.New("--tls-cert and --tls-key go together")
	case f.tlsMode == tlsSelfSigned && f.tlsCert != "":
		return nil, "", errors.New("--tls self-signed and --tls-cert contradict each other: choose one")
	}
	var (
		cert tls.Certificate
		note string
		err  error
	)
	switch {
	case f.tlsCert != "":
		cert, err = tls.LoadX509KeyPair(f.tlsCert, f.tlsKey)
		if err != nil {
			return nil, "", fmt.Errorf("--tls-cert/--tls-key: %w", err)
		}
		note = fmt.Sprintf("  tls      %s (SHA-256 %s)\n", f.tlsCert, fingerprint(cert.Certificate[0]))
	case f.tlsMode == tlsSelfSigned:
		host, _, err := net.SplitHostPort(f.addr)
		if err != nil {
			return nil, "", fmt.Errorf("--addr %q: %w", f.addr, err)
		}
		dir := filepath.Join(dataDir, selfSignedDir)
		var ca *x509.Certificate
		cert, ca, err = selfSignedCert(dir, certHosts(host), time.Now())
		if err != nil {
			return nil, "", err
		}
		note = selfSignedNote(dir, cert, ca)
	default:
		return nil, "", nil
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}, note, nil
}

// selfSignedNote is the banner's account of a self-signed certificate.
func selfSignedNote(dir string, cert tls.Certificate, ca *x509.Certificate) string {
	var names []string
	for _, ip := range cert.Leaf.IPAddresses {
		names = append(names, ip.String())
	}
	names = append(names, cert.Leaf.DNSNames...)
	var b strings.Builder
	fmt.Fprintf(&b, "  tls      self-signed for %s\n", strings.Join(names, ", "))
	fmt.Fprintf(&b, "           %s  SHA-256 %s\n", filepath.Join(dir, serverCertFile), fingerprint(cert.Certificate[0]))
	fmt.Fprintf(&b, "           trust %s on phones and browsers (SHA-256 %s); see README, Security\n",
		filepath.Join(dir, caCertFile), fingerprint(ca.Raw))
	return b.String()
}

// fingerprint is a certificate's SHA-256 as browsers show it: AB:CD:….
func fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	parts := make([]string, len(sum))
	for i, c := range sum {
		parts[i] = fmt.Sprintf("%02X", c)
	}
	return strings.Join(parts, ":")
}

// certHosts are the names a self-signed certificate must cover: the listen
// host, loopback, every non-loopback address of this machine's interfaces
// and its host name (also as name.local, for mDNS).
func certHosts(listenHost string) []string {
	hosts := []string{"localhost", "127.0.0.1", "::1"}
	add := func(h string) {
		if h != "" && !slices.Contains(hosts, h) {
			hosts = append(hosts, h)
		}
	}
	if ip := net.ParseIP(listenHost); ip == nil || !ip.IsUnspecified() {
		add(strings.ToLower(listenHost))
	}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			// Link-local IPv6 addresses need a zone, which URLs and
			// certificates cannot carry.
			if !ok || ipn.IP.IsLoopback() || ipn.IP.IsLinkLocalUnicast() && ipn.IP.To4() == nil {
				continue
			}
			add(ipn.IP.String())
		}
	}
	if name, err := os.Hostname(); err == nil && name != "" {
		name = strings.ToLower(name)
		add(name)
		if !strings.Contains(name, ".") {
			add(name + ".local")
		}
	}
	return hosts
}

// selfSignedCert loads the certificate kept in dir when it is still good for
// hosts, else issues one (and a CA, if there is no usable one) and writes it.
func selfSignedCert(dir string, hosts []string, now time.Time) (tls.Certificate, *x509.Certificate, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("tls: %w", err)
	}
	ca, caKey, err := loadPair(filepath.Join(dir, caCertFile), filepath.Join(dir, caKeyFile))
	if err != nil || !ca.IsCA || now.Add(renewBefore).After(ca.NotAfter) {
		if ca, caKey, err = newCA(now); err != nil {
			return tls.Certificate{}, nil, err
		}
		if err := writePair(dir, caCertFile, caKeyFile, caKey, ca.Raw); err != nil {
			return tls.Certificate{}, nil, err
		}
	}
	leaf, key, err := loadPair(filepath.Join(dir, serverCertFile), filepath.Join(dir, serverKeyFile))
	if err != nil || leaf.CheckSignatureFrom(ca) != nil || now.Add(renewBefore).After(leaf.NotAfter) || !covers(leaf, hosts) {
		if leaf, key, err = newLeaf(ca, caKey, hosts, now); err != nil {
			return tls.Certificate{}, nil, err
		}
		if err := writePair(dir, serverCertFile, serverKeyFile, key, leaf.Raw, ca.Raw); err != nil {
			return tls.Certificate{}, nil, err
		}
	}
	return tls.Certificate{Certificate: [][]byte{leaf.Raw, ca.Raw}, PrivateKey: key, Leaf: leaf}, ca, nil
}

// covers reports whether c names every host.
func covers(c *x509.Certificate, hosts []string) bool {
	for _, h := range hosts {
		if c.VerifyHostname(h) != nil {
			return false
		}
	}
	return true
}

// newCA makes the local CA.
func newCA(now time.Time) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("tls: %w", err)
	}
	name, _ := os.Hostname()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{Organization: []string{"Glimpse"}, CommonName: "Glimpse local CA " + name},
		NotBefore:             now.Add(-certClockSkewed),
		NotAfter:              now.Add(caLifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	return sign(tmpl, tmpl, &key.PublicKey, key, key)
}

// newLeaf makes the server's certificate for hosts, signed by ca.
func newLeaf(ca *x509.Certificate, caKey *ecdsa.PrivateKey, hosts []string, now time.Time) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("tls: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{Organization: []string{"Glimpse"}, CommonName: "Glimpse server"},
		NotBefore:             now.Add(-certClockSkewed),
		NotAfter:              now.Add(leafLifetime),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	return sign(tmpl, ca, &key.PublicKey, caKey, key)
}

// sign issues tmpl, signed by parent's key, and parses the result.
func sign(tmpl, parent *x509.Certificate, pub *ecdsa.PublicKey, parentKey, key *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, parentKey)
	if err != nil {
		return nil, nil, fmt.Errorf("tls: make certificate: %w", err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("tls: make certificate: %w", err)
	}
	return c, key, nil
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return n.Add(n, big.NewInt(1))
}

// loadPair reads a certificate (the first of its file) and its ECDSA key.
func loadPair(certFile, keyFile string) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	cb, err := os.ReadFile(certFile)
	if err != nil {
		return nil, nil, err
	}
	kb, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, nil, err
	}
	cblk, _ := pem.Decode(cb)
	kblk, _ := pem.Decode(kb)
	if cblk == nil || kblk == nil {
		return nil, nil, errors.New("tls: not PEM")
	}
	c, err := x509.ParseCertificate(cblk.Bytes)
	if err != nil {
		return nil, nil, err
	}
	key, err := x509.ParseECPrivateKey(kblk.Bytes)
	if err != nil {
		return nil, nil, err
	}
	if !key.PublicKey.Equal(c.PublicKey) {
		return nil, nil, errors.New("tls: key does not match certificate")
	}
	return c, key, nil
}

// writePair writes certificates (in order, PEM) and a key (PEM, mode 0600)
// into dir, each through a temporary file and a rename.
func writePair(dir, certFile, keyFile string, key *ecdsa.PrivateKey, ders ...[]byte) error {
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	var certs []byte
	for _, der := range ders {
		certs = append(certs, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	if err := writeFile(filepath.Join(dir, keyFile), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		return err
	}
	return writeFile(filepath.Join(dir, certFile), certs, 0o644)
}

func writeFile(path string, b []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, mode); err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	return nil
}
