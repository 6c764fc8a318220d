package core

import "slices"

// ClientParams configures a client.
type ClientParams struct {
	ID             Addr   // the client's endpoint
	Session        uint64 // unique per client incarnation: the deduplication identity
	Authorities    []Addr // the authority cell's members
	AttemptTimeout int64  // resend an unanswered request after this long
	// RefreshInterval: while an operation waits on a primary that left an attempt
	// unanswered, the client asks the authority this often (0: every AttemptTimeout) and
	// resends at once when a newer configuration names another primary.
	RefreshInterval int64
	OpTimeout       int64 // give up (outcome unknown) after this long
	Backoff         int64 // wait after Busy/Unavailable
	MaxInFlight     int   // bounded: at most dedupPerClient
}

// DefaultClientParams returns sane timings.
func DefaultClientParams(id Addr, session uint64, authorities []Addr) ClientParams {
	return ClientParams{ID: id, Session: session, Authorities: authorities,
		AttemptTimeout: 300 * Millisecond, RefreshInterval: 100 * Millisecond, OpTimeout: 5 * Second,
		Backoff: 20 * Millisecond, MaxInFlight: 32}
}

// Completion reports the end of a client operation.
type Completion struct {
	Req    uint64
	Vol    VolumeID
	Status Status // StatusOK, or the definite error; Unknown set when the outcome is unknown
	// Unknown: the operation timed out; a write may or may not have taken effect.
	Unknown bool
	Data    []byte
	Epoch   Epoch
	Primary Addr
}

// authAsk is the last configuration request for a volume: when (at most one per
// attempt timeout), and to which member while it is unanswered (0 once answered).
type authAsk struct {
	at int64
	to Addr
}

type clientOp struct {
	req       uint64
	vol       VolumeID
	write     bool
	flush     bool
	block     uint64
	count     uint32
	data      []byte
	start     int64
	sentAt    int64 // 0: not sent yet
	notBefore int64
	attempts  int
	epoch     Epoch // the configuration's epoch at the last attempt
	// suspect: an attempt went unanswered, so its primary may be gone; the client keeps
	// asking the authority (RefreshInterval) until an answer comes.
	suspect bool
}

// Client is the deterministic client library: it caches configurations, follows
// redirects and failovers, and retries a write with the same request id so it takes
// effect at most once.
type Client struct {
	p       ClientParams
	now     int64
	nextReq uint64
	ops     []*clientOp // in submission order
	configs map[VolumeID]Config
	asking  map[VolumeID]authAsk
	authReq uint64
	guess   LeaderGuess
	out     []Envelope
	done    []Completion
}

// NewClient returns a client.
func NewClient(p ClientParams) *Client {
	if p.MaxInFlight <= 0 || p.MaxInFlight > dedupPerClient {
		p.MaxInFlight = dedupPerClient
	}
	if p.RefreshInterval <= 0 || p.RefreshInterval > p.AttemptTimeout {
		p.RefreshInterval = p.AttemptTimeout
	}
	return &Client{p: p, configs: map[VolumeID]Config{}, asking: map[VolumeID]authAsk{}, guess: NewLeaderGuess(p.Authorities)}
}

// InFlight is the number of unfinished operations.
func (c *Client) InFlight() int { return len(c.ops) }

// CanSubmit reports whether another operation fits the in-flight bound. Besides the
// count, the ids of unfinished requests must span fewer than the replicas' deduplication
// window, so a retried write is always recognised.
func (c *Client) CanSubmit() bool {
	if len(c.ops) >= c.p.MaxInFlight {
		return false
	}
	return len(c.ops) == 0 || c.nextReq+1-c.ops[0].req < dedupPerClient
}

func (c *Client) oldest() uint64 {
	if len(c.ops) == 0 {
		return c.nextReq + 1
	}
	return c.ops[0].req
}

// Write starts a write of data (whole blocks) at block; it returns the request id.
// When CanSubmit is false the operation completes at once with StatusBusy.
func (c *Client) Write(now int64, vol VolumeID, block uint64, data []byte) uint64 {
	return c.submit(now, &clientOp{vol: vol, write: true, block: block, data: data, count: uint32(len(data) / BlockSize)})
}

// Read starts a read of count blocks at block.
func (c *Client) Read(now int64, vol VolumeID, block uint64, count uint32) uint64 {
	return c.submit(now, &clientOp{vol: vol, block: block, count: count})
}

// Flush starts a flush: it completes once every write the primary logged before it is
// durable on every in-sync member.
func (c *Client) Flush(now int64, vol VolumeID) uint64 {
	return c.submit(now, &clientOp{vol: vol, flush: true})
}

func (c *Client) submit(now int64, op *clientOp) uint64 {
	c.now = max(c.now, now)
	full := !c.CanSubmit()
	c.nextReq++
	op.req, op.start = c.nextReq, c.now
	if full {
		// Callers should wait for CanSubmit; an operation beyond the bound never starts.
		c.done = append(c.done, Completion{Req: op.req, Vol: op.vol, Status: StatusBusy})
		return op.req
	}
	c.ops = append(c.ops, op)
	c.attempt(op)
	return op.req
}

// Config returns the cached configuration of vol.
func (c *Client) Config(vol VolumeID) (Config, bool) {
	cfg, ok := c.configs[vol]
	return cfg, ok
}

// Drain returns and clears outgoing messages and completions.
func (c *Client) Drain() ([]Envelope, []Completion) {
	o, d := c.out, c.done
	c.out, c.done = nil, nil
	return o, d
}

func (c *Client) attempt(op *clientOp) {
	cfg, ok := c.configs[op.vol]
	if !ok {
		if op.suspect {
			c.askAuthorityEvery(op.vol, c.p.RefreshInterval)
		} else {
			c.askAuthority(op.vol)
		}
		op.sentAt = 0
		return
	}
	op.sentAt, op.epoch = c.now, cfg.Epoch
	op.attempts++
	switch {
	case op.write:
		c.out = append(c.out, Envelope{To: cfg.Primary, Msg: &ClientWrite{Vol: op.vol, Epoch: cfg.Epoch, Client: c.p.Session,
			Req: op.req, Oldest: c.oldest(), Block: op.block, Data: op.data}})
	case op.flush:
		c.out = append(c.out, Envelope{To: cfg.Primary, Msg: &ClientFlush{Vol: op.vol, Epoch: cfg.Epoch, Client: c.p.Session, Req: op.req}})
	default:
		c.out = append(c.out, Envelope{To: cfg.Primary, Msg: &ClientRead{Vol: op.vol, Epoch: cfg.Epoch, Client: c.p.Session,
			Req: op.req, Block: op.block, Count: op.count}})
	}
}

func (c *Client) askAuthority(vol VolumeID) { c.askAuthorityEvery(vol, c.p.AttemptTimeout) }

// askAuthorityEvery asks the authority for vol's configuration unless it was asked less
// than every ago.
func (c *Client) askAuthorityEvery(vol VolumeID, every int64) {
	if a, ok := c.asking[vol]; ok {
		if c.now-a.at < every {
			return
		}
		if c.now-a.at >= c.p.AttemptTimeout {
			// A live leader answers a read in a round trip or two: the member asked is
			// down or cut off (often the leader that died with the primary). Ask the next
			// one now rather than after maxMisses unanswered requests, each an attempt
			// timeout apart.
			c.guess.Unanswered(a.to)
		}
	}
	to := c.guess.To()
	c.asking[vol] = authAsk{at: c.now, to: to}
	c.authReq++
	c.out = append(c.out, Envelope{To: to, Msg: &AuthRequest{Op: OpGetConfig, ReqID: c.authReq, Vol: vol}})
}

func (c *Client) learn(cfg Config) bool {
	old, ok := c.configs[cfg.Volume]
	if ok && old.Epoch >= cfg.Epoch {
		return false
	}
	c.configs[cfg.Volume] = cfg.Clone()
	delete(c.asking, cfg.Volume)
	return true
}

func (c *Client) find(req uint64) (int, *clientOp) {
	for i, op := range c.ops {
		if op.req == req {
			return i, op
		}
	}
	return -1, nil
}

func (c *Client) finish(i int, comp Completion) {
	c.ops = slices.Delete(c.ops, i, i+1)
	c.done = append(c.done, comp)
}

// Step handles a reply.
func (c *Client) Step(now int64, from Addr, m Message) {
	c.now = max(c.now, now)
	switch m := m.(type) {
	case *AuthReply:
		if m.Status == StatusNotLeader {
			c.guess.Redirected(m.Leader)
			delete(c.asking, m.Config.Volume) // ask the member named, at the next attempt
			return
		}
		c.guess.Heard(from)
		if a, ok := c.asking[m.Config.Volume]; ok {
			a.to = 0 // answered (the rate limit stays)
			c.asking[m.Config.Volume] = a
		}
		if m.Status == StatusOK && m.Config.Volume != 0 {
			c.learn(m.Config)
			c.resendWaiting(m.Config.Volume)
		}
		if m.Status == StatusNotFound && m.Op == OpGetConfig {
			delete(c.configs, m.Config.Volume)
			for i := 0; i < len(c.ops); {
				if op := c.ops[i]; op.vol == m.Config.Volume {
					c.finish(i, Completion{Req: op.req, Vol: op.vol, Status: StatusNotFound})
					continue
				}
				i++
			}
		}
	case *ClientReply:
		i, op := c.find(m.Req)
		if op == nil || m.Client != c.p.Session {
			return // a late duplicate
		}
		op.suspect = false // someone answers
		switch m.Status {
		case StatusOK:
			c.finish(i, Completion{Req: op.req, Vol: op.vol, Status: StatusOK, Data: m.Data, Epoch: m.Epoch, Primary: from})
		case StatusInvalid, StatusIOError:
			c.finish(i, Completion{Req: op.req, Vol: op.vol, Status: m.Status})
		case StatusNotFound:
			// The volume was deleted, or this node's replica was moved elsewhere (DESIGN
			// 2.13): the authority says which (its NotFound ends the operation).
			delete(c.configs, op.vol)
			c.askAuthority(op.vol)
			op.sentAt, op.notBefore = 0, c.now+c.p.Backoff
		case StatusNotPrimary, StatusStaleEpoch:
			if m.HasConfig && c.learn(m.Config) {
				c.attempt(op)
				return
			}
			// Whoever answered knows no better than we do: ask the authority.
			if cur, ok := c.configs[op.vol]; ok && m.HasConfig && m.Config.Epoch <= cur.Epoch {
				delete(c.configs, op.vol)
			}
			c.askAuthority(op.vol)
			op.sentAt, op.notBefore = 0, c.now+c.p.Backoff
		case StatusUnavailable:
			// A primary that cannot serve (its lease lapsed, or it is cut off from its
			// secondaries) may have been replaced: ask the authority (at most once per
			// attempt timeout per volume), or a reader would stay with a deposed primary
			// for as long as it answers (found by the e2e fault test).
			c.askAuthority(op.vol)
			op.sentAt, op.notBefore = 0, c.now+c.p.Backoff
		default: // Busy
			op.sentAt, op.notBefore = 0, c.now+c.p.Backoff
		}
	}
}

// resendWaiting sends vol's operations that wait for a configuration, and those last
// sent under an older one (their primary may be gone: the new one answers them, with the
// same request ids, so a write still takes effect at most once).
func (c *Client) resendWaiting(vol VolumeID) {
	cfg, ok := c.configs[vol]
	for _, op := range c.ops {
		if op.vol != vol {
			continue
		}
		if op.sentAt == 0 && c.now >= op.notBefore || ok && op.sentAt != 0 && op.epoch < cfg.Epoch {
			c.attempt(op)
		}
	}
}

// Tick retries and times out operations.
func (c *Client) Tick(now int64) {
	c.now = max(c.now, now)
	for i := 0; i < len(c.ops); {
		op := c.ops[i]
		if c.now-op.start >= c.p.OpTimeout {
			c.finish(i, Completion{Req: op.req, Vol: op.vol, Status: StatusUnavailable, Unknown: true})
			continue
		}
		i++
		switch {
		case op.sentAt == 0 && c.now >= op.notBefore:
			c.attempt(op)
		case op.sentAt != 0 && c.now-op.sentAt >= c.p.AttemptTimeout:
			op.suspect = true
			// No answer: the primary may be gone. Refresh the configuration (the authority
			// answers in a round trip; every other try, the client found a new primary up
			// to two attempt timeouts late, measured in e2e/failover_test.go).
			delete(c.configs, op.vol)
			c.attempt(op)
		case op.sentAt != 0 && op.suspect && c.now-op.sentAt >= c.p.RefreshInterval:
			// Still waiting on a primary that left an attempt unanswered: ask the authority
			// again; a newer configuration resends this at once (resendWaiting) instead of
			// at the next attempt timeout.
			c.askAuthorityEvery(op.vol, c.p.RefreshInterval)
		}
	}
}
