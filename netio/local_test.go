package netio

import (
	"bytes"
	"context"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/cairnstore/cairn/core"
)

// A client given its node (ClientConfig.Node) reaches it in memory: on the volume's
// primary and on another replica, 64 concurrent writers (twice the library's in-flight
// bound, so operations wait and are submitted while the node steps the client, through
// the pipe) write and read back their blocks; the node never sees a connection from the
// client, and the pipe carried messages.
func TestLocalRoute(t *testing.T) {
	tc := newTestCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rep := createVolume(t, ctx, tc.client(t, ctx, 1000, 10*time.Second), core.AuthRequest{Vol: 3, Blocks: 1024, RF: 3})
	if rep.Status != core.StatusOK {
		t.Fatalf("create volume: %+v", rep)
	}
	primary := int(rep.Config.Primary) - 1
	for _, i := range []int{primary, (primary + 1) % 3} {
		id := core.Addr(1100 + i)
		r := tc.runners[i]
		cl, err := NewClient(ctx, ClientConfig{ID: id, Session: uint64(time.Now().UnixNano()), Authorities: tc.auth, Peers: tc.peers,
			OpTimeout: 10 * time.Second, Node: r})
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		if got, err := cl.Admin(ctx, core.AuthRequest{Op: core.OpGetConfig, Vol: 3}); err != nil || got.Status != core.StatusOK {
			t.Fatalf("node %d: admin through the local route: %v %+v", i+1, err, got)
		}
		var wg sync.WaitGroup
		errs := make(chan error, 64)
		for w := range 64 {
			wg.Go(func() {
				for round := range 4 {
					blk := uint64(w*8 + round + 512*(i%2))
					want := bytes.Repeat([]byte{byte(w), byte(round), byte(i)}, core.BlockSize/3+1)[:core.BlockSize]
					if err := cl.Write(ctx, 3, blk, want); err != nil {
						errs <- fmt.Errorf("write %d: %w", blk, err)
						return
					}
					got, err := cl.Read(ctx, 3, blk, 1)
					if err != nil || !bytes.Equal(got, want) {
						errs <- fmt.Errorf("read %d: %v (data equal: %v)", blk, err, bytes.Equal(got, want))
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("node %d (primary %d): %v", i+1, primary+1, err)
		}
		r.tr.mu.Lock()
		in := r.tr.clients[id]
		r.tr.mu.Unlock()
		if in != nil {
			t.Fatalf("node %d: the client connected to its own node over TCP", i+1)
		}
		if i == primary && cl.pipe.carried.Load() == 0 {
			t.Fatalf("node %d: nothing went through the pipe with 64 operations on 32 slots", i+1)
		}
		t.Logf("node %d (primary: %v): pipe carried %d messages, dropped %d", i+1, i == primary, cl.pipe.carried.Load(), cl.pipe.dropped.Load())
	}
}

// A runner steps its node only once Run has recovered it: Do before Run fails instead.
func TestRunnerDoBeforeRun(t *testing.T) {
	r, err := NewRunner(RunnerConfig{Params: core.DefaultParams(1, 0, []core.Addr{1}, []core.NodeInfo{{Addr: 1}}), DataDir: t.TempDir(),
		Transport: TransportConfig{Listen: "127.0.0.1:0"}})
	if err != nil {
		t.Fatal(err)
	}
	ran := false
	if err := r.Do(context.Background(), func(*core.Node) { ran = true }); err == nil || ran {
		t.Fatalf("Do before Run: err %v, ran %v; want an error and f not run", err, ran)
	}
	r.st.Close()
}

// copyMsg's field-by-field copies equal the codec's and share no memory with the
// original (but a reply's Data, which is moved). A field added to one of those messages
// fails the field count here: copyMsg must then learn to copy it.
func TestCopyMsg(t *testing.T) {
	cfg := core.Config{Volume: 7, Blocks: 9, RF: 2, Epoch: 3, Primary: 2, InSync: []core.Addr{1, 2}, Replicas: []core.Addr{1, 2},
		QoS: core.QoS{IOPS: 5, BurstIOPS: 6, BurstCredits: 7, MBps: 8}, Disks: []uint64{0xd1, 0xd2}}
	msgs := []core.Message{
		&core.ClientRead{Vol: 1, Epoch: 2, Client: 3, Req: 4, Block: 5, Count: 6},
		&core.ClientFlush{Vol: 1, Epoch: 2, Client: 3, Req: 4},
		&core.ClientWrite{Vol: 1, Epoch: 2, Client: 3, Req: 4, Oldest: 5, Block: 6, Data: []byte("abc"), FUA: true},
		&core.ClientReply{Vol: 1, Client: 2, Req: 3, Status: core.StatusOK, Epoch: 4, Data: []byte("def"), HasConfig: true, Config: cfg},
	}
	fields := map[string]int{"ClientRead": 6, "ClientFlush": 4, "ClientWrite": 8, "ClientReply": 8}
	for _, m := range msgs {
		typ := reflect.TypeOf(m).Elem()
		if n := typ.NumField(); n != fields[typ.Name()] {
			t.Fatalf("%s has %d fields, copyMsg knows %d: teach copyMsg the new ones", typ.Name(), n, fields[typ.Name()])
		}
		want, err := core.Decode(core.Encode(nil, m))
		if err != nil {
			t.Fatal(err)
		}
		got, ok := copyMsg(m)
		if !ok || !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: copy %+v, codec %+v", typ.Name(), got, want)
		}
		// Scribble on the original: the copy must not change.
		v := reflect.ValueOf(m).Elem()
		for i := range v.NumField() {
			if _, reply := m.(*core.ClientReply); reply && v.Type().Field(i).Name == "Data" {
				continue // moved
			}
			if f := v.Field(i); f.Kind() == reflect.Slice && f.Len() > 0 {
				f.Index(0).SetUint(0x5a)
			}
		}
		if r, ok := m.(*core.ClientReply); ok {
			r.Config.InSync[0], r.Config.Replicas[0], r.Config.Disks[0] = 99, 99, 99
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: the copy shares memory with the original: %+v", typ.Name(), got)
		}
	}
	if typ := reflect.TypeOf(core.Config{}); typ.NumField() != 9 {
		t.Fatalf("Config has %d fields; check that Config.Clone copies every new one", typ.NumField())
	}
}
