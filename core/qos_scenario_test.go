package core

import (
	"testing"
)

// Scripted QoS scenarios on the harness: admission, the bounded wait queue and Busy, a
// live QoS change, credits carried across a failover, flush, and step-down.

// setQoS changes the volume's QoS through the authority (as an operator would).
func (c *cluster) setQoS(q QoS, req uint64) Config {
	c.t.Helper()
	c.inject(hAdmin, c.authLeader(), &AuthRequest{Op: OpSetQoS, ReqID: req, Vol: hVol, QoS: q})
	for _, m := range c.inbox {
		if r, ok := m.(*AuthReply); ok && r.ReqID == req {
			if r.Status != StatusOK {
				c.t.Fatalf("set QoS %+v: %v", q, r.Status)
			}
			return r.Config
		}
	}
	c.t.Fatal("set QoS: no reply")
	return Config{}
}

// rawReplies returns the statuses of replies to raw request req, in arrival order.
func (c *cluster) rawReplies(req uint64) []Status {
	var out []Status
	for _, m := range c.inbox {
		if r, ok := m.(*ClientReply); ok && r.Req == req && r.Client == rawClient {
			out = append(out, r.Status)
		}
	}
	return out
}

const rawClient = 555

func (c *cluster) rawWrite(to Addr, epoch Epoch, req uint64, b byte) {
	c.post(hRaw, to, &ClientWrite{Vol: hVol, Epoch: epoch, Client: rawClient, Req: req, Oldest: 1, Block: 0, Data: fill(b, 1)})
}

func statusCount(c *cluster, from, to uint64, want Status) int {
	n := 0
	for r := from; r <= to; r++ {
		for _, s := range c.rawReplies(r) {
			if s == want {
				n++
			}
		}
	}
	return n
}

func TestScenarioQoSQueueAndBusy(t *testing.T) {
	c, cfg0, p, _ := setup(t, func(p *Params) { p.QueueDepth = 2 })
	cfg := c.setQoS(QoS{IOPS: 10}, 7)
	if cfg.Epoch != cfg0.Epoch+1 || cfg.QoS != (QoS{IOPS: 10, BurstIOPS: 10}) {
		t.Fatalf("after set QoS: %v %+v", cfg, cfg.QoS)
	}
	c.run(100 * Millisecond)
	// Six writes at one instant: the bucket holds one token, two wait, three are refused.
	for r := uint64(1); r <= 6; r++ {
		c.rawWrite(p, cfg.Epoch, r, byte(r))
	}
	c.deliverAll()
	if ok, busy := statusCount(c, 1, 6, StatusOK), statusCount(c, 1, 6, StatusBusy); ok != 1 || busy != 3 {
		t.Fatalf("at once: %d OK and %d Busy, want 1 and 3", ok, busy)
	}
	c.run(250 * Millisecond) // 10 IOPS: one token per 100 ms
	if ok := statusCount(c, 1, 6, StatusOK); ok != 3 {
		t.Fatalf("after 250 ms: %d OK, want 3 (the queued two admitted)", ok)
	}
	st, _ := c.node(p).n.Counters(hVol)
	if st.Admitted != 3 || st.Throttled != 2 || st.Busy != 3 || st.Queued != 0 || !st.Primary {
		t.Fatalf("counters %+v", st)
	}
	full := c.node(p).n.Stats()
	if len(full.Volumes) != 1 || full.Volumes[0].Latency[ClassWrite].Count() != 3 {
		t.Fatalf("stats %+v", full)
	}
	// The queued writes waited for their tokens: their latency shows it.
	if mx := full.Volumes[0].Latency[ClassWrite].Max(); mx < 90*Millisecond {
		t.Fatalf("max write latency %d ns, want >= 90 ms (queued for a token)", mx)
	}
}

// The queue is also bounded in bytes: write payloads cannot pile up in memory.
func TestScenarioQoSQueueBytes(t *testing.T) {
	c, _, p, _ := setup(t, func(p *Params) { p.QueueBytes = 2 * BlockSize })
	cfg := c.setQoS(QoS{IOPS: 10}, 7)
	c.run(100 * Millisecond)
	for r := uint64(1); r <= 5; r++ {
		c.rawWrite(p, cfg.Epoch, r, byte(r))
	}
	c.deliverAll()
	if busy := statusCount(c, 1, 5, StatusBusy); busy != 2 {
		t.Fatalf("%d Busy, want 2 (one admitted, two blocks queued)", busy)
	}
	c.run(250 * Millisecond)
	if ok := statusCount(c, 1, 5, StatusOK); ok != 3 {
		t.Fatalf("%d OK, want 3", ok)
	}
	if c.vol(p).q.queuedBytes != 0 {
		t.Fatalf("queued bytes %d after the queue drained", c.vol(p).q.queuedBytes)
	}
}

func TestScenarioQoSLiveChange(t *testing.T) {
	c, _, p, _ := setup(t, func(p *Params) { p.QueueDepth = 50 })
	cfg := c.setQoS(QoS{IOPS: 10}, 7)
	c.run(100 * Millisecond)
	for r := uint64(1); r <= 40; r++ {
		c.rawWrite(p, cfg.Epoch, r, byte(r))
	}
	c.deliverAll()
	c.run(500 * Millisecond)
	if ok := statusCount(c, 1, 40, StatusOK); ok < 5 || ok > 7 {
		t.Fatalf("10 IOPS for 0.5 s: %d OK, want about 6", ok)
	}
	// Raise the commitment while the queue is full: the waiting writes go at the new rate
	// (they carry the old epoch, so they are answered StaleEpoch and a real client retries).
	cfg2 := c.setQoS(QoS{IOPS: 10_000}, 8)
	c.run(50 * Millisecond)
	st, _ := c.node(p).n.Counters(hVol)
	if st.QoS.IOPS != 10_000 || st.Queued != 0 {
		t.Fatalf("after the change: %+v", st)
	}
	if n := statusCount(c, 1, 40, StatusStaleEpoch); n+statusCount(c, 1, 40, StatusOK) != 40 {
		t.Fatalf("every queued write answered: %d stale + OK", n)
	}
	for r := uint64(41); r <= 140; r++ {
		c.rawWrite(p, cfg2.Epoch, r, byte(r))
	}
	c.deliverAll()
	c.run(50 * Millisecond)
	if ok := statusCount(c, 41, 140, StatusOK); ok != 100 {
		t.Fatalf("at 10,000 IOPS: %d of 100 OK within 50 ms", ok)
	}
	// Lower it again and remove it: the client library follows each epoch.
	c.setQoS(QoS{IOPS: 5}, 9)
	c.writeOK(1, fill(1, 1))
	c.setQoS(QoS{}, 10)
	c.run(50 * Millisecond)
	if st, _ := c.node(p).n.Counters(hVol); st.QoS != (QoS{}) || st.Credits != -1 {
		t.Fatalf("unthrottled: %+v", st)
	}
	c.writeOK(2, fill(2, 1))
}

func TestScenarioQoSBadLimitsRefused(t *testing.T) {
	c, cfg0, _, _ := setup(t, nil)
	for i, q := range []QoS{{IOPS: -1}, {BurstIOPS: 5}, {IOPS: 100, BurstIOPS: 50}, {IOPS: 100, MBps: -1}} {
		req := uint64(20 + i)
		c.inject(hAdmin, c.authLeader(), &AuthRequest{Op: OpSetQoS, ReqID: req, Vol: hVol, QoS: q})
		got := StatusOK
		for _, m := range c.inbox {
			if r, ok := m.(*AuthReply); ok && r.ReqID == req {
				got = r.Status
			}
		}
		if got != StatusInvalid {
			t.Errorf("QoS %+v: %v, want Invalid", q, got)
		}
	}
	if c.authCfg().Epoch != cfg0.Epoch {
		t.Fatalf("a refused change moved the epoch: %v", c.authCfg())
	}
}

func TestScenarioQoSCreditsSurviveFailover(t *testing.T) {
	c, _, p, m := setup(t, func(p *Params) { p.QueueDepth = 256; p.Global.DiscountPermille = 1000 })
	cfg := c.setQoS(QoS{IOPS: 10, BurstIOPS: 2000, BurstCredits: 500}, 7)
	c.run(100 * Millisecond)
	for r := uint64(1); r <= 200; r++ {
		c.rawWrite(p, cfg.Epoch, r, byte(r))
	}
	c.deliverAll()
	c.run(300 * Millisecond)
	spent := c.vol(p).q.lim.Credits(c.clock(c.node(p)))
	if spent > 350 {
		t.Fatalf("credits %d after about 200 burst writes, want <= 350", spent)
	}
	if pc := c.vol(m[1]).q.peerCredits; pc < 0 || pc > spent+10 {
		t.Fatalf("member %d heard credits %d, primary has %d", m[1], pc, spent)
	}
	c.crash(p)
	c.runUntil(10*Second, "a new primary", func() bool { return c.authCfg().Primary != p })
	np := c.authCfg().Primary
	c.run(100 * Millisecond)
	v := c.vol(np)
	if v.q.lim == nil {
		t.Fatal("new primary does not throttle")
	}
	if got := v.q.lim.Credits(c.clock(c.node(np))); got > spent+60 {
		t.Fatalf("new primary starts with %d credits, the old one had %d: the balance was not carried", got, spent)
	}
}

func TestScenarioFlushWaitsForCommit(t *testing.T) {
	c, cfg, p, m := setup(t, nil)
	c.node(m[0]).manual = true // its appends wait: nothing commits
	c.rawWrite(p, cfg.Epoch, 1, 7)
	c.post(hRaw, p, &ClientFlush{Vol: hVol, Epoch: cfg.Epoch, Client: rawClient, Req: 2})
	c.deliverAll()
	if len(c.rawReplies(1)) != 0 || len(c.rawReplies(2)) != 0 {
		t.Fatalf("answered before the write committed: %v %v", c.rawReplies(1), c.rawReplies(2))
	}
	h := c.node(m[0])
	h.manual = false
	for len(h.st.inflight) > 0 {
		c.completeOne(h)
		c.flush(h)
	}
	c.deliverAll()
	if w, f := c.rawReplies(1), c.rawReplies(2); len(w) != 1 || w[0] != StatusOK || len(f) != 1 || f[0] != StatusOK {
		t.Fatalf("after commit: write %v flush %v", w, f)
	}
	// With nothing pending a flush answers at once; through the client library too.
	c.post(hRaw, p, &ClientFlush{Vol: hVol, Epoch: cfg.Epoch, Client: rawClient, Req: 3})
	c.deliverAll()
	if f := c.rawReplies(3); len(f) != 1 || f[0] != StatusOK {
		t.Fatalf("idle flush: %v", f)
	}
	req := c.cl.Flush(hBase+c.now, hVol)
	c.flushClient()
	c.deliverAll()
	c.waitOK(req, Second)
	if st := c.node(p).n.Stats(); st.Volumes[0].Latency[ClassFlush].Count() != 3 {
		t.Fatalf("flush latencies recorded: %d, want 3", st.Volumes[0].Latency[ClassFlush].Count())
	}
}

func TestScenarioStepDownAnswersQueued(t *testing.T) {
	c, _, p, m := setup(t, nil)
	cfg := c.setQoS(QoS{IOPS: 1}, 7)
	c.run(100 * Millisecond)
	for r := uint64(1); r <= 3; r++ {
		c.rawWrite(p, cfg.Epoch, r, byte(r))
	}
	c.deliverAll()
	if st, _ := c.node(p).n.Counters(hVol); st.Queued != 2 {
		t.Fatalf("queued %d, want 2", st.Queued)
	}
	// The operator moves the primary: the old one steps down and sends its waiting
	// clients to the new configuration instead of dropping them.
	c.inject(hAdmin, c.authLeader(), &AuthRequest{Op: OpPromote, ReqID: 9, Vol: hVol, FromEpoch: cfg.Epoch, Node: m[1], Disk: hDisk(m[1], 0)})
	c.run(100 * Millisecond)
	if c.authCfg().Primary != m[1] {
		t.Fatalf("promotion did not happen: %v", c.authCfg())
	}
	for r := uint64(2); r <= 3; r++ {
		if s := c.rawReplies(r); len(s) != 1 || s[0] != StatusNotPrimary {
			t.Fatalf("queued request %d answered %v, want NotPrimary", r, s)
		}
	}
}
