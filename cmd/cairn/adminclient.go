package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// The operator commands (volume, status, stats) talk to the nodes' admin HTTP API
// (netio.Admin), not to the cluster protocol: any node serves every volume request (it
// forwards it to the authority cell), so the client tries the addresses it is given in
// order and moves on when one does not answer.

// defaultAdmin is the admin API of the three nodes `make run` starts (scripts/run.sh).
const defaultAdmin = "http://127.0.0.1:8001,http://127.0.0.1:8002,http://127.0.0.1:8003"

// maxAdminAnswer bounds what the CLI reads from one answer (a listing of a million volumes
// is ~250 MiB of JSON; anything beyond this is refused, not buffered).
const maxAdminAnswer = 256 << 20

// adminFlags are the flags every operator command shares.
type adminFlags struct {
	urls    string
	timeout time.Duration
	json    bool
}

func (f *adminFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.urls, "admin", envDefault("CAIRN_ADMIN", defaultAdmin),
		"the nodes' admin API, `URL[,URL...]`; the next is tried when one does not answer (env CAIRN_ADMIN)")
	fs.DurationVar(&f.timeout, "timeout", 15*time.Second, "give up on one request to one node after this long")
	fs.BoolVar(&f.json, "json", false, "print the API's JSON instead of a table")
}

// adminClient sends requests to the first admin address that answers.
type adminClient struct {
	urls    []string
	timeout time.Duration
	hc      *http.Client
}

// parseAdminURLs reads a comma-separated list of admin addresses: http(s)://HOST:PORT, or
// HOST:PORT (http is assumed).
func parseAdminURLs(s string) ([]string, error) {
	var out []string
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if !strings.Contains(part, "://") {
			part = "http://" + part
		}
		u, err := url.Parse(part)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
			return nil, fmt.Errorf("--admin %q: want http://HOST:PORT (comma-separated for several nodes)", part)
		}
		out = append(out, strings.TrimSuffix(part, "/"))
	}
	if len(out) == 0 {
		return nil, errors.New("--admin: no address given")
	}
	return out, nil
}

func (f *adminFlags) client() (*adminClient, error) {
	urls, err := parseAdminURLs(f.urls)
	if err != nil {
		return nil, err
	}
	if f.timeout <= 0 {
		return nil, fmt.Errorf("--timeout %v: want a positive duration", f.timeout)
	}
	return &adminClient{urls: urls, timeout: f.timeout, hc: &http.Client{}}, nil
}

// apiError is an HTTP answer other than 2xx: the API's message.
type apiError struct {
	code int
	msg  string
}

func (e *apiError) Error() string { return e.msg }

// call sends one request; a node that does not answer (refused, reset, timed out) is
// skipped for the next one. Any HTTP answer is final: a 2xx body is returned, anything
// else is an *apiError carrying the API's message. A create sent to a node that times out
// after acting on it and then retried elsewhere answers "already exists".
func (c *adminClient) call(ctx context.Context, method, path string, body any) ([]byte, error) {
	var payload []byte
	if body != nil {
		var err error
		if payload, err = json.Marshal(body); err != nil {
			return nil, fmt.Errorf("encode request: %w", err)
		}
	}
	var errs []error
	for _, base := range c.urls {
		b, err := c.callOne(ctx, base, method, path, payload)
		var ae *apiError
		if err == nil || errors.As(err, &ae) || ctx.Err() != nil {
			return b, err
		}
		errs = append(errs, err)
	}
	return nil, fmt.Errorf("no admin API answered: %w", errors.Join(errs...))
}

// callOne sends a request to one node.
func (c *adminClient) callOne(ctx context.Context, base, method, path string, payload []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var rd io.Reader
	if payload != nil {
		rd = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, method, base+path, rd)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", base, err)
	}
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", base, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAdminAnswer+1))
	if err != nil {
		return nil, fmt.Errorf("%s: reading the answer: %w", base, err)
	}
	if len(b) > maxAdminAnswer {
		return nil, &apiError{code: resp.StatusCode, msg: fmt.Sprintf("%s: answer larger than %d MiB", base, maxAdminAnswer>>20)}
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error string `json:"error"`
		}
		msg := strings.TrimSpace(string(b))
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			msg = e.Error
		}
		if msg == "" {
			msg = resp.Status
		}
		return nil, &apiError{code: resp.StatusCode, msg: msg}
	}
	return b, nil
}

// get decodes a 2xx JSON answer into v.
func (c *adminClient) get(ctx context.Context, method, path string, body, v any) ([]byte, error) {
	b, err := c.call(ctx, method, path, body)
	if err != nil {
		return nil, err
	}
	if v != nil {
		if err := json.Unmarshal(b, v); err != nil {
			return nil, fmt.Errorf("the admin API's answer is not what this cairn expects (another version?): %w", err)
		}
	}
	return b, nil
}

// mib formats a size in MiB.
func mib(n uint64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d TiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d GiB", n>>10)
	}
	return fmt.Sprintf("%d MiB", n)
}

// parseCommand splits args into an optional operand and flags (flags may come before or
// after the operand); more than one operand is a usage error.
func parseCommand(fs *flag.FlagSet, args []string) (string, error) {
	var operand string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		operand, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return "", err
	}
	if operand == "" && fs.NArg() > 0 {
		operand = fs.Arg(0)
		if err := fs.Parse(fs.Args()[1:]); err != nil { // flags after the operand
			return "", err
		}
	}
	if fs.NArg() > 0 {
		return "", fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	return operand, nil
}

// printJSON prints an answer as the API sent it, indented.
func printJSON(w io.Writer, b []byte) {
	var buf bytes.Buffer
	if json.Indent(&buf, b, "", "  ") != nil {
		w.Write(b)
		return
	}
	buf.WriteByte('\n')
	w.Write(buf.Bytes())
}
