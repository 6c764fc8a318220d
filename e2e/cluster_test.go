package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cairnstore/cairn/internal/testutil"
)

// binary is the cairn binary built once for the package's tests.
var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// cairnBinary returns the cairn binary the tests run: $E2E_CAIRN_BIN when set (a release
// build, or a deliberately broken one to show a test can fail), else a build of this tree.
func cairnBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("E2E_CAIRN_BIN"); p != "" {
		return p
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "cairn-e2e-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "cairn")
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, "go", "build", "-o", binPath, "../cmd/cairn").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// proc is one running process with its output in a log file.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
}

func startProc(t *testing.T, name, logPath string, args ...string) *proc {
	t.Helper()
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	return p
}

// signal sends sig and, for SIGKILL and SIGTERM, waits (bounded) for the exit.
func (p *proc) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if p.exited() {
		return
	}
	_ = p.cmd.Process.Signal(sig)
	if sig != syscall.SIGKILL && sig != syscall.SIGTERM {
		return
	}
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
		t.Errorf("%s did not exit within 15 s of %v; killed", p.name, sig)
	}
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *proc) tail() string {
	b, _ := os.ReadFile(p.log)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// cluster is n real `cairn node` processes, node i+1 in zone i%3, on loopback ports.
type cluster struct {
	t      *testing.T
	bin    string
	dir    string
	peers  string   // the address book (--peers): what every node and client dials
	listen []string // node i+1's address in the book
	bind   []string // node i+1's --listen when it differs from listen (behind a proxy), else nil
	admin  []string
	nbd    []string // node i+1's --nbd address, when the cluster serves NBD from its nodes
	nodes  []*proc
}

// clusterOptions configures newClusterWith.
type clusterOptions struct {
	nodes int
	// front, if set, is called once per node, before any node starts, with the node's id
	// and the private address it will listen on (--listen); it returns the address the
	// address book (--peers) advertises for the node, e.g. a proxy's in front of it.
	front func(id int, private string) string
	// nbd starts every node with --nbd on a port of its own (cluster.nbd).
	nbd bool
}

func newCluster(t *testing.T, n int) *cluster {
	t.Helper()
	return newClusterWith(t, clusterOptions{nodes: n})
}

func newClusterWith(t *testing.T, o clusterOptions) *cluster {
	t.Helper()
	n := o.nodes
	c := &cluster{t: t, bin: cairnBinary(t), dir: t.TempDir(), nodes: make([]*proc, n)}
	ports := testutil.FreePorts(t, 2*n)
	var ps []string
	for i := range n {
		addr := ports[i]
		if o.front != nil {
			c.bind = append(c.bind, ports[i])
			addr = o.front(i+1, ports[i])
		}
		c.listen = append(c.listen, addr)
		c.admin = append(c.admin, ports[n+i])
		ps = append(ps, fmt.Sprintf("%d=%d@%s", i+1, i%3, addr))
	}
	c.peers = strings.Join(ps, ",")
	if o.nbd {
		c.nbd = testutil.FreePorts(t, n)
	}
	t.Cleanup(func() {
		for _, p := range c.nodes {
			if p != nil {
				p.signal(t, syscall.SIGKILL)
			}
		}
		if t.Failed() {
			for _, p := range c.nodes {
				if p != nil {
					t.Logf("--- %s log (tail) ---\n%s", p.name, p.tail())
				}
			}
		}
	})
	for i := range n {
		c.start(i)
	}
	for i := range n {
		c.waitHealthy(i)
	}
	return c
}

// start runs node i+1 from its data directory (a restart reuses it), with extra flags.
func (c *cluster) start(i int, extra ...string) {
	c.t.Helper()
	name := fmt.Sprintf("node%d", i+1)
	args := []string{c.bin, "node", "--id", fmt.Sprint(i + 1), "--peers", c.peers, "--data-dir", filepath.Join(c.dir, name),
		"--admin", c.admin[i], "--log-level", "info"}
	args = append(args, extra...)
	if c.bind != nil {
		args = append(args, "--listen", c.bind[i])
	}
	if c.nbd != nil {
		args = append(args, "--nbd", c.nbd[i])
	}
	c.nodes[i] = startProc(c.t, name, filepath.Join(c.dir, name+".log"), args...)
}

func (c *cluster) waitHealthy(i int) {
	c.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if c.nodes[i].exited() {
			c.t.Fatalf("node%d exited: %v\n%s", i+1, c.nodes[i].err, c.nodes[i].tail())
		}
		resp, err := http.Get("http://" + c.admin[i] + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.t.Fatalf("node%d not healthy within 20 s\n%s", i+1, c.nodes[i].tail())
}

// volumeJSON is the part of the admin API's volume answer the tests read.
type volumeJSON struct {
	Name     string   `json:"name"`
	ID       uint32   `json:"id"`
	RF       uint8    `json:"rf"`
	Epoch    uint64   `json:"epoch"`
	Primary  uint32   `json:"primary"`
	InSync   []uint32 `json:"in_sync"`
	Replicas []uint32 `json:"replicas"`
	Disks    []string `json:"disks"`
	State    string   `json:"state"`
}

// api calls the admin API of any live node, retrying 503s (no authority leader yet)
// for up to 30 s. It returns the status code and body of the first other answer.
func (c *cluster) api(method, path string, body any) (int, []byte) {
	c.t.Helper()
	var data []byte
	if body != nil {
		data, _ = json.Marshal(body)
	}
	deadline := time.Now().Add(30 * time.Second)
	var last string
	for attempt := 0; time.Now().Before(deadline); attempt++ {
		i := attempt % len(c.nodes)
		if c.nodes[i].exited() {
			continue
		}
		req, _ := http.NewRequest(method, "http://"+c.admin[i]+path, bytes.NewReader(data))
		cl := &http.Client{Timeout: 15 * time.Second}
		resp, err := cl.Do(req)
		if err != nil {
			last = err.Error()
			time.Sleep(100 * time.Millisecond)
			continue
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable {
			return resp.StatusCode, b
		}
		last = string(b)
		time.Sleep(100 * time.Millisecond)
	}
	c.t.Fatalf("%s %s: no answer within 30 s: %s", method, path, last)
	return 0, nil
}

func (c *cluster) createVolume(name, size string, rf int) volumeJSON {
	c.t.Helper()
	code, b := c.api("POST", "/v1/volumes", map[string]any{"name": name, "size": size, "rf": rf})
	if code != http.StatusCreated {
		c.t.Fatalf("create %s: %d %s", name, code, b)
	}
	var v volumeJSON
	if err := json.Unmarshal(b, &v); err != nil {
		c.t.Fatal(err)
	}
	return v
}

func (c *cluster) volume(name string) volumeJSON {
	c.t.Helper()
	code, b := c.api("GET", "/v1/volumes/"+name, nil)
	if code != http.StatusOK {
		c.t.Fatalf("show %s: %d %s", name, code, b)
	}
	var v volumeJSON
	if err := json.Unmarshal(b, &v); err != nil {
		c.t.Fatal(err)
	}
	return v
}

// attach runs `cairn attach` for the volume and returns its NBD URI once it serves.
func (c *cluster) attach(name string, extra ...string) (string, *proc) {
	c.t.Helper()
	addr := testutil.FreePorts(c.t, 1)[0]
	args := append([]string{c.bin, "attach", name, "--peers", c.peers, "--nbd", addr}, extra...)
	p := startProc(c.t, "attach-"+name, filepath.Join(c.dir, "attach-"+name+".log"), args...)
	c.t.Cleanup(func() { p.signal(c.t, syscall.SIGTERM) })
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if p.exited() {
			c.t.Fatalf("attach exited: %v\n%s", p.err, p.tail())
		}
		if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			conn.Close()
			return "nbd://" + addr + "/" + name, p
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.t.Fatalf("attach did not listen within 30 s\n%s", p.tail())
	return "", nil
}
