// Package s3fault is an HTTP reverse proxy in front of an S3 endpoint that answers the
// requests a test chooses with S3 errors instead of forwarding them, and counts what it
// injected and what it passed on.
//
// A test starts the proxy in front of a server (testcluster.StartS3) and points Weir at the
// proxy's Endpoint instead of the server's. Requests are forwarded with their Host header and
// body unchanged, so that the server accepts the SigV4 signatures the client made for the
// proxy's address. Rules added with Inject pick requests by S3 operation (told apart by method,
// path and query, for path-style requests as minio-go sends to an IP endpoint) and say how
// many to let through first and how many to fail; Clear removes them all.
//
// Clients retry S3's 500 and 503 answers (minio-go up to 10 times, a few seconds in all), so a
// fault limited to fewer requests than that is absorbed by the retries and a fault until
// cleared surfaces as the error.
package s3fault

import (
	"encoding/xml"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// Op is an S3 operation as the proxy tells it from a request.
type Op string

// The operations the proxy tells apart. Every other request (bucket operations, listing
// parts or uploads, asking a bucket's location) is Other.
const (
	// Any is no operation: a Rule with it matches every request.
	Any                     Op = ""
	PutObject               Op = "PutObject" // PUT on a key without uploadId (also a copy)
	GetObject               Op = "GetObject"
	HeadObject              Op = "HeadObject"
	DeleteObject            Op = "DeleteObject"
	ListObjects             Op = "ListObjects"             // GET on a bucket, except ?location and ?uploads
	CreateMultipartUpload   Op = "CreateMultipartUpload"   // POST on a key with ?uploads
	UploadPart              Op = "UploadPart"              // PUT on a key with ?partNumber&uploadId
	CompleteMultipartUpload Op = "CompleteMultipartUpload" // POST on a key with ?uploadId
	AbortMultipartUpload    Op = "AbortMultipartUpload"    // DELETE on a key with ?uploadId
	Other                   Op = "Other"
)

// Fault is the S3 error a rule answers with.
type Fault struct {
	Status  int
	Code    string
	Message string
}

// The faults S3 answers under trouble.
var (
	// InternalError is S3's 500: the request failed inside the service; retry it.
	InternalError = Fault{Status: http.StatusInternalServerError, Code: "InternalError", Message: "We encountered an internal error. Please try again."}
	// SlowDown is S3's 503 throttling answer: reduce the request rate.
	SlowDown = Fault{Status: http.StatusServiceUnavailable, Code: "SlowDown", Message: "Please reduce your request rate."}
)

// Rule picks requests to fail.
type Rule struct {
	// Op is the operation the rule matches; Any matches every request.
	Op Op
	// PartNumber narrows an UploadPart rule to the part with this number (from 1); 0 matches
	// every part.
	PartNumber int
	// Skip lets the first Skip matching requests through, so that the next one is the first
	// to fail: Skip 1 on UploadPart fails the second part sent.
	Skip int
	// Times is how many matching requests fail, after which the rule is spent; 0 fails them
	// until Clear.
	Times int
	// Fault is the answer.
	Fault Fault
}

// Counts is how many requests of an operation the proxy forwarded and how many it answered
// with a fault.
type Counts struct {
	Passed   int
	Injected int
}

// Proxy is the running proxy.
type Proxy struct {
	endpoint  string
	server    *http.Server
	forward   *httputil.ReverseProxy
	transport *http.Transport
	served    chan struct{} // closed when the server has stopped serving
	mu        struct {
		sync.Mutex
		rules  []*rule
		counts map[Op]Counts
		nextID int
	}
}

// rule is a Rule with the matching requests seen so far.
type rule struct {
	Rule
	seen   int
	failed int
}

// Start runs a proxy on a free loopback port in front of the plain-HTTP S3 endpoint target
// (host:port). It stops when the test ends.
func Start(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	to := &url.URL{Scheme: "http", Host: target}
	p := &Proxy{endpoint: ln.Addr().String(), served: make(chan struct{})}
	p.mu.counts = make(map[Op]Counts)
	p.transport = http.DefaultTransport.(*http.Transport).Clone()
	// The server's answers pass unchanged: no gzip negotiated on the client's behalf.
	p.transport.DisableCompression = true
	p.forward = &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(to)
			r.Out.Host = r.In.Host // signed by the client; the server checks it
		},
		Transport: p.transport,
		// The server is not there (killed, stopped): answer as a gateway in front of it does.
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			http.Error(w, err.Error(), http.StatusBadGateway)
		},
	}
	p.server = &http.Server{Handler: http.HandlerFunc(p.serve)}
	go func() {
		defer close(p.served)
		_ = p.server.Serve(ln) // ends with ErrServerClosed when the test ends
	}()
	t.Cleanup(p.close)
	return p
}

// close stops serving and drops every connection, which also ends the requests being
// forwarded, and waits for the server to end.
func (p *Proxy) close() {
	_ = p.server.Close()
	<-p.served
	p.transport.CloseIdleConnections()
}

// Endpoint is the proxy's host:port, to give clients in place of the server's.
func (p *Proxy) Endpoint() string { return p.endpoint }

// Inject adds a rule. Every rule counts the requests it matches; a request fails with the
// fault of the first rule, in the order added, that has let its Skip through and not yet
// failed its Times.
func (p *Proxy) Inject(r Rule) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mu.rules = append(p.mu.rules, &rule{Rule: r})
}

// Clear removes every rule: from now on every request is forwarded. The counts stay.
func (p *Proxy) Clear() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mu.rules = nil
}

// Counts is how many requests of op the proxy forwarded and answered with a fault so far;
// Any sums every operation.
func (p *Proxy) Counts(op Op) Counts {
	p.mu.Lock()
	defer p.mu.Unlock()
	if op != Any {
		return p.mu.counts[op]
	}
	var sum Counts
	for _, c := range p.mu.counts {
		sum.Passed += c.Passed
		sum.Injected += c.Injected
	}
	return sum
}

func (p *Proxy) serve(w http.ResponseWriter, r *http.Request) {
	op, part := classify(r)
	fault, id, inject := p.decide(op, part)
	if !inject {
		p.forward.ServeHTTP(w, r)
		return
	}
	// Read the body first, as a server does, so that the client sees the answer rather than
	// a connection closed under a request it is still sending.
	_, _ = io.Copy(io.Discard, r.Body)
	body, err := xml.Marshal(errorBody{Code: fault.Code, Message: fault.Message, Resource: r.URL.Path, RequestID: id})
	if err != nil {
		panic(err) // strings only: cannot fail
	}
	body = append([]byte(xml.Header), body...)
	h := w.Header()
	h.Set("Content-Type", "application/xml")
	h.Set("X-Amz-Request-Id", id)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(fault.Status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

// decide counts a request of op (for UploadPart, of part) and says whether to fail it, with
// which fault and request ID.
func (p *Proxy) decide(op Op, part int) (f Fault, requestID string, inject bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var hit *rule
	for _, r := range p.mu.rules {
		if !r.matches(op, part) {
			continue
		}
		r.seen++
		if hit == nil && r.seen > r.Skip && (r.Times == 0 || r.failed < r.Times) {
			hit = r
		}
	}
	c := p.mu.counts[op]
	if hit == nil {
		c.Passed++
		p.mu.counts[op] = c
		return Fault{}, "", false
	}
	hit.failed++
	c.Injected++
	p.mu.counts[op] = c
	p.mu.nextID++
	return hit.Fault, "s3fault-" + strconv.Itoa(p.mu.nextID), true
}

func (r *rule) matches(op Op, part int) bool {
	if r.Op != Any && r.Op != op {
		return false
	}
	return r.PartNumber == 0 || (op == UploadPart && part == r.PartNumber)
}

// classify tells the operation of a path-style request and, for UploadPart, its part number.
func classify(r *http.Request) (Op, int) {
	_, key, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	q := r.URL.Query()
	if key == "" {
		if r.Method == http.MethodGet && r.URL.Path != "/" && !q.Has("location") && !q.Has("uploads") {
			return ListObjects, 0
		}
		return Other, 0
	}
	upload := q.Has("uploadId")
	switch r.Method {
	case http.MethodPut:
		if !upload {
			return PutObject, 0
		}
		if n, err := strconv.Atoi(q.Get("partNumber")); err == nil {
			return UploadPart, n
		}
	case http.MethodPost:
		switch {
		case q.Has("uploads"):
			return CreateMultipartUpload, 0
		case upload:
			return CompleteMultipartUpload, 0
		}
	case http.MethodDelete:
		if upload {
			return AbortMultipartUpload, 0
		}
		return DeleteObject, 0
	case http.MethodGet:
		if !upload {
			return GetObject, 0
		}
	case http.MethodHead:
		return HeadObject, 0
	}
	return Other, 0
}

// errorBody is the XML body of an S3 error answer.
type errorBody struct {
	XMLName   xml.Name `xml:"Error"`
	Code      string
	Message   string
	Resource  string
	RequestID string `xml:"RequestId"`
}
