package consent

import (
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// The cache is split into shards, each with its own lock, so that the
// pipeline's concurrent lookups rarely wait for one another. A subject's
// shard is chosen by hashing it; each shard holds an equal share of the
// entry and byte bounds. Shards are few enough (shardCount) that each
// holds over a thousand entries, so the uneven spread of a hash costs
// little of the bounds.
//
// A shard keeps its cache in three slices without pointers, which the
// garbage collector never scans however many subjects are cached:
//
//   - entries: fixed-size entries (cache_record.go), free slots chained;
//   - index: an open-addressing hash table (linear probing, deletion by
//     backward shift, so no tombstones) of slots holding the subject's
//     hash and its entry's position;
//   - arena: the bytes of every entry's subject, grant times and link,
//     appended and never overwritten. Removing an entry leaves its bytes
//     dead; when the arena is full it is copied, live bytes only, into a
//     new one half as large again (compact), so it stays within about
//     1.5 times the live bytes and each byte is copied a bounded number
//     of times. Because written bytes never change, a slice of the arena
//     taken under the lock stays valid after it (a compaction copies).
//
// Eviction is CLOCK (second chance): a hit only sets the entry's reference
// bit; the hand sweeps the slots, clearing set bits and evicting the first
// entry whose bit is clear or whose TTL has passed. Against an LRU list
// this spares two pointers per entry and the list surgery on every hit,
// while keeping what is looked up again (a subject's events come in
// bursts).

// maxShards bounds the shard count; minShardEntries and minShardBytes are
// the smallest share of cache.size and cache.max_bytes a shard gets when
// there are several.
const (
	maxShards       = 64
	minShardEntries = 1024
	minShardBytes   = 64 << 10
	minIndexSlots   = 16
	minArenaBytes   = 4 << 10
)

// shardCount returns a power of two: as many shards as give each at least
// minShardEntries entries (and minShardBytes bytes, when bytes are
// bounded), at most maxShards. A small cache is one shard, in exact CLOCK
// order.
func shardCount(size, maxBytes int) int {
	n := 1
	for n < maxShards && size/(2*n) >= minShardEntries && (maxBytes == 0 || maxBytes/(2*n) >= minShardBytes) {
		n *= 2
	}
	return n
}

// usage counts the cache's entries and accounted bytes across shards.
type usage struct {
	entries atomic.Int64
	bytes   atomic.Int64
}

func (u *usage) add(entries, bytes int) {
	u.entries.Add(int64(entries))
	u.bytes.Add(int64(bytes))
}

type shard struct {
	mu      sync.Mutex
	index   []uint64 // 0: empty; else hash<<32 | position in entries + 1
	entries []entry
	free    uint32 // first free slot of entries + 1; 0: none
	arena   []byte
	dead    int                // bytes of arena no entry uses
	full    map[uint32]*Record // records kept whole, by position in entries
	count   int                // entries held
	bytes   int                // accounted bytes of the entries held
	hand    int                // CLOCK hand: the next slot considered for eviction

	maxLen   int // most entries held
	maxBytes int // most accounted bytes held; 0: no bound
	usage    *usage
	_        [64]byte // keeps neighbouring shards' locks off one cache line
}

// lookup returns the position in entries of key (hashed to h), if held,
// and where the index points to it.
func (s *shard) lookup(key string, h uint32) (i uint32, slot int, ok bool) {
	if len(s.index) == 0 {
		return 0, 0, false
	}
	mask := len(s.index) - 1
	for slot = int(h) & mask; ; slot = (slot + 1) & mask {
		v := s.index[slot]
		if v == 0 {
			return 0, 0, false
		}
		if uint32(v>>32) != h {
			continue
		}
		i = uint32(v) - 1
		e := &s.entries[i]
		if int(e.keyLen) == len(key) && string(s.arena[e.off:e.off+uint32(e.keyLen)]) == key {
			return i, slot, true
		}
	}
}

// get returns a copy of key's entry, the bytes after its subject and the
// record kept whole, if any, when it may answer at now; it sets the
// entry's reference bit. An entry past its TTL or its record's expiry is
// removed.
func (s *shard) get(key string, h uint32, now time.Time, at instant) (e entry, tail []byte, full *Record, ok bool) {
	i, slot, ok := s.lookup(key, h)
	if !ok {
		return entry{}, nil, nil, false
	}
	p := &s.entries[i]
	if p.flags&flagFull != 0 {
		full = s.full[i]
	}
	if !p.servable(at) || full != nil && full.ExpiredAt(now) {
		s.remove(i, slot)
		return entry{}, nil, nil, false
	}
	p.ref = true
	start := p.off + uint32(p.keyLen)
	end := start + uint32(p.timesLen) + uint32(p.linkLen)
	return *p, s.arena[start:end:end], full, true
}

// put stores x under key (replacing the subject's entry, if any), evicting
// until it fits. An entry larger than the shard's whole byte budget is not
// stored.
func (s *shard) put(key string, h uint32, x encoded, monoNs int64) {
	if i, slot, ok := s.lookup(key, h); ok {
		s.remove(i, slot)
	}
	size := x.bytes + arenaBytes(len(key)+len(x.tail))
	if s.maxBytes > 0 && size > s.maxBytes || uint64(size) > math.MaxUint32 {
		return
	}
	for s.count >= s.maxLen || (s.maxBytes > 0 && s.bytes+size > s.maxBytes) {
		if !s.evictOne(monoNs) {
			return
		}
	}
	n := len(key) + len(x.tail)
	if len(s.arena)+n > cap(s.arena) {
		if !s.compact(n) {
			return
		}
	}
	e := x.e
	e.off = uint32(len(s.arena))
	e.hash = h
	e.size = uint32(size)
	e.keyLen = uint16(len(key))
	s.arena = append(append(s.arena, key...), x.tail...)
	var i uint32
	if s.free != 0 {
		i = s.free - 1
		s.free = s.entries[i].off
	} else {
		// Every slot is in use, so len(entries) == count < maxLen: the
		// slice never outgrows the entry bound.
		i = uint32(len(s.entries))
		s.entries = append(s.entries, entry{})
	}
	s.entries[i] = e
	if x.full != nil {
		if s.full == nil {
			s.full = map[uint32]*Record{}
		}
		s.full[i] = x.full
	}
	s.insertIndex(h, i)
	s.count++
	s.bytes += size
	s.usage.add(1, size)
}

// compact makes room in the arena for n more bytes: a new arena, half as
// large again as the live bytes and n, into which the live bytes are
// copied. It reports false if the offsets would not fit.
func (s *shard) compact(n int) bool {
	live := len(s.arena) - s.dead
	size := max((live+n)*3/2, minArenaBytes)
	if uint64(size) > math.MaxUint32 {
		if uint64(live+n) > math.MaxUint32 {
			return false
		}
		size = math.MaxUint32
	}
	arena := make([]byte, 0, size)
	for i := range s.entries {
		e := &s.entries[i]
		if e.flags&flagLive == 0 {
			continue
		}
		end := e.off + uint32(e.keyLen) + uint32(e.timesLen) + uint32(e.linkLen)
		off := uint32(len(arena))
		arena = append(arena, s.arena[e.off:end]...)
		e.off = off
	}
	s.arena, s.dead = arena, 0
	return true
}

// evictOne removes one entry, chosen by the CLOCK hand: the first whose
// reference bit is clear or whose TTL has passed, clearing the bits it
// passes. It reports false when the shard holds nothing.
func (s *shard) evictOne(monoNs int64) bool {
	n := len(s.entries)
	for range 2 * n { // one sweep clears every bit; the next finds a victim
		if s.hand >= n {
			s.hand = 0
		}
		i := s.hand
		s.hand++
		e := &s.entries[i]
		if e.flags&flagLive == 0 {
			continue
		}
		if e.ref && monoNs < e.stale {
			e.ref = false
			continue
		}
		s.removeAt(uint32(i))
		return true
	}
	return false
}

// removeAt removes the entry at position i of entries.
func (s *shard) removeAt(i uint32) {
	mask := len(s.index) - 1
	for slot := int(s.entries[i].hash) & mask; ; slot = (slot + 1) & mask {
		if uint32(s.index[slot]) == i+1 {
			s.remove(i, slot)
			return
		}
	}
}

// remove removes the entry at position i of entries, which index slot
// points to.
func (s *shard) remove(i uint32, slot int) {
	e := &s.entries[i]
	s.deleteIndex(slot)
	s.dead += int(e.keyLen) + int(e.timesLen) + int(e.linkLen)
	s.count--
	s.bytes -= int(e.size)
	s.usage.add(-1, -int(e.size))
	if e.flags&flagFull != 0 {
		delete(s.full, i)
	}
	*e = entry{off: s.free}
	s.free = i + 1
}

func (s *shard) removeKey(key string, h uint32) {
	if i, slot, ok := s.lookup(key, h); ok {
		s.remove(i, slot)
	}
}

// insertIndex points the index at entry i, for hash h, growing the index
// past a load of 3/4.
func (s *shard) insertIndex(h, i uint32) {
	if 4*(s.count+1) > 3*len(s.index) {
		s.growIndex()
	}
	mask := len(s.index) - 1
	slot := int(h) & mask
	for s.index[slot] != 0 {
		slot = (slot + 1) & mask
	}
	s.index[slot] = uint64(h)<<32 | uint64(i+1)
}

func (s *shard) growIndex() {
	old := s.index
	s.index = make([]uint64, max(2*len(old), minIndexSlots))
	mask := len(s.index) - 1
	for _, v := range old {
		if v == 0 {
			continue
		}
		slot := int(v>>32) & mask
		for s.index[slot] != 0 {
			slot = (slot + 1) & mask
		}
		s.index[slot] = v
	}
}

// deleteIndex empties slot and shifts back the slots after it that
// probing would otherwise no longer reach.
func (s *shard) deleteIndex(slot int) {
	mask := len(s.index) - 1
	for {
		s.index[slot] = 0
		next := slot
		for {
			next = (next + 1) & mask
			v := s.index[next]
			if v == 0 {
				return
			}
			home := int(v>>32) & mask
			// The slot at next may move to the hole unless its home lies
			// cyclically in (slot, next]: probing from there would not
			// pass the hole.
			if slot <= next {
				if slot < home && home <= next {
					continue
				}
			} else if slot < home || home <= next {
				continue
			}
			s.index[slot] = v
			slot = next
			break
		}
	}
}

// clear drops every entry and the memory that held them.
func (s *shard) clear() {
	s.usage.add(-s.count, -s.bytes)
	s.index, s.entries, s.free, s.arena, s.dead, s.full = nil, nil, 0, nil, 0, nil
	s.count, s.bytes, s.hand = 0, 0, 0
}
