package core

import (
	"errors"
	"fmt"
)

// CorruptBlockError is what a Storage returns when a block fails its checksum. The core
// never serves such a block: it answers the client with a retryable status and repairs
// the block from another replica.
type CorruptBlockError struct {
	Vol   VolumeID
	Block uint64
}

func (e *CorruptBlockError) Error() string {
	return fmt.Sprintf("volume %d block %d failed its checksum", e.Vol, e.Block)
}

const (
	maxRepairs   = 1024 // blocks under repair per volume
	scrubPerTick = 2    // blocks each replica verifies per tick
)

// readBlocks reads from the store; a corrupt block starts its repair.
func (n *Node) readBlocks(v *volume, block uint64, buf []byte) error {
	err := n.st.ReadBlocks(v.cfg.Volume, block, buf)
	var ce *CorruptBlockError
	if errors.As(err, &ce) {
		n.requestRepair(v, ce.Block)
	}
	return err
}

// requestRepair asks the other replicas for block b at the LSN that last wrote it here.
// Only a committed version is asked for (every replica that has it holds the same bytes);
// a newer one is left to replication, which rewrites the block anyway.
func (n *Node) requestRepair(v *volume, b uint64) {
	if v.repairs == nil {
		v.repairs = map[uint64]*repair{}
	}
	rp, ok := v.repairs[b]
	if !ok && len(v.repairs) >= maxRepairs {
		return
	}
	if ok && n.now-rp.asked < n.p.RetransmitTimeout {
		return
	}
	if !ok {
		rp = &repair{}
		v.repairs[b] = rp
	}
	rp.asked, rp.refused, rp.askedN = n.now, 0, 0
	x := v.index.get(b)
	if x > v.commit {
		return
	}
	for _, r := range v.cfg.Replicas {
		if r != n.p.Self {
			rp.askedN++
			n.send(r, &RepairRequest{Vol: v.cfg.Volume, Block: b, LSN: x})
		}
	}
	if rp.askedN == 0 {
		rp.lost = true
	}
}

// repair is a corrupt block being repaired. lost: every replica asked in the last round
// refused (none holds that version intact): reads of the block fail with an I/O error —
// reported, never served — while repair keeps being retried.
type repair struct {
	asked   int64
	askedN  int
	refused int
	lost    bool
}

// blockLost reports whether any block in [block, block+count) is known unrepairable.
func (v *volume) blockLost(block, count uint64) bool {
	// order-independent: any match answers.
	for b, rp := range v.repairs {
		if rp.lost && b >= block && b < block+count {
			return true
		}
	}
	return false
}

func (n *Node) onRepairRequest(from Addr, m *RepairRequest) {
	v := n.vols[m.Vol]
	if v == nil || m.Block >= v.cfg.Blocks {
		return
	}
	reply := &RepairReply{Vol: m.Vol, Block: m.Block, LSN: m.LSN}
	if v.index.get(m.Block) == m.LSN && m.LSN <= v.commit {
		buf := make([]byte, BlockSize)
		if err := n.readBlocks(v, m.Block, buf); err == nil {
			reply.OK, reply.Data = true, buf
		}
	}
	n.send(from, reply)
}

func (n *Node) onRepairReply(m *RepairReply) {
	v := n.vols[m.Vol]
	if v == nil {
		return
	}
	rp, ok := v.repairs[m.Block]
	if !ok || v.index.get(m.Block) != m.LSN {
		return
	}
	if !m.OK || len(m.Data) != BlockSize {
		rp.refused++
		if rp.refused >= rp.askedN {
			rp.lost = true
		}
		return
	}
	if err := n.st.WriteBlocks(v.cfg.Volume, m.Block, m.Data); err != nil {
		n.fatal(fmt.Errorf("core: write repaired block: %w", err))
		return
	}
	delete(v.repairs, m.Block)
}

// scrub verifies a few blocks per tick (finding latent corruption) and retries repairs.
func (n *Node) scrub(v *volume) {
	if v.cfg.Blocks == 0 {
		return
	}
	buf := make([]byte, BlockSize)
	for i := 0; i < scrubPerTick; i++ {
		b := v.scrubNext % v.cfg.Blocks
		v.scrubNext++
		if _, repairing := v.repairs[b]; repairing {
			continue
		}
		_ = n.readBlocks(v, b, buf)
	}
	// order-independent: each pending repair is retried on its own timer.
	for b := range v.repairs {
		n.retryRepair(v, b)
	}
}

func (n *Node) retryRepair(v *volume, b uint64) {
	buf := make([]byte, BlockSize)
	if n.st.ReadBlocks(v.cfg.Volume, b, buf) == nil {
		delete(v.repairs, b) // rewritten meanwhile (a newer write, or a delta)
		return
	}
	n.requestRepair(v, b)
}
