package pipeline

import (
	"sync"
	"sync/atomic"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/consentd/consentd/internal/lib/hooks"
)

// generation holds the offset bookkeeping of one consumer group
// generation: per assigned partition, the offset up to which every write
// is acknowledged, committed with this generation's id. A commit from a
// stale generation is refused by the broker; the new owner then re-reads
// from the last good commit (duplicates, never loss).
type generation struct {
	gen   *kafka.Generation
	mu    sync.Mutex // serializes commits
	parts []*partition
}

type partition struct {
	topic     string
	id        int
	acked     atomic.Int64 // next offset to commit: all before it acknowledged
	fetched   atomic.Int64 // next offset after the last fetched message
	committed int64        // guarded by generation.mu
}

func newPartition(topic string, id int) *partition {
	p := &partition{topic: topic, id: id, committed: -1}
	p.acked.Store(-1)
	p.fetched.Store(-1)
	return p
}

// commit commits every partition's acknowledged offset that moved.
func (r *Runner) commit(g *generation) {
	g.mu.Lock()
	defer g.mu.Unlock()
	offsets := map[string]map[int]int64{}
	var moved []*partition
	for _, p := range g.parts {
		a := p.acked.Load()
		if a > p.committed {
			if offsets[p.topic] == nil {
				offsets[p.topic] = map[int]int64{}
			}
			offsets[p.topic][p.id] = a
			moved = append(moved, p)
		}
	}
	if len(moved) == 0 {
		return
	}
	if err := g.gen.CommitOffsets(offsets); err != nil {
		hooks.Each(r.cfg.Hooks, func(h CommitHook) { h.OnCommit(err, nil) })
		r.commitLoop.Failed(err)
		r.cfg.Log.Debug("offset commit failed; will retry", zap.Int32("generation", g.gen.ID), zap.Error(err))
		return
	}
	r.commitLoop.OK()
	lags := make([]PartitionLag, 0, len(moved))
	for _, p := range moved {
		p.committed = offsets[p.topic][p.id]
		lags = append(lags, PartitionLag{Topic: p.topic, Partition: p.id, Offset: p.committed, Lag: max(p.fetched.Load()-p.committed, 0)})
	}
	hooks.Each(r.cfg.Hooks, func(h CommitHook) { h.OnCommit(nil, lags) })
}
