//! Which shard a new call goes to: the one sending the fewest streams
//! among those that take calls; pure, so it is tested without threads.

/// A shard as placement sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    /// RTP streams it sends (see `ShardStats::streams`).
    pub streams: u64,
    /// Its load gauge refuses new calls.
    pub overloaded: bool,
}

/// The index of the least-loaded shard that is not overloaded, the lowest
/// index on a tie; `None` when every shard is overloaded (or there is none).
pub fn least_loaded(shards: &[Candidate]) -> Option<usize> {
    shards
        .iter()
        .enumerate()
        .filter(|(_, c)| !c.overloaded)
        .min_by_key(|(i, c)| (c.streams, *i))
        .map(|(i, _)| i)
}

/// Where a call must go even when every shard is overloaded: a call that
/// admission let in, or one resumed after a restart, is carried rather
/// than lost; the least-loaded shard of all then takes it.
pub fn place(shards: &[Candidate]) -> usize {
    least_loaded(shards).unwrap_or_else(|| {
        shards
            .iter()
            .enumerate()
            .min_by_key(|(i, c)| (c.streams, *i))
            .map_or(0, |(i, _)| i)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shard(streams: u64, overloaded: bool) -> Candidate {
        Candidate {
            streams,
            overloaded,
        }
    }

    #[test]
    fn the_shard_with_the_fewest_streams_takes_the_call() {
        let shards = [shard(7, false), shard(3, false), shard(5, false)];
        assert_eq!(least_loaded(&shards), Some(1));
        assert_eq!(place(&shards), 1);
    }

    #[test]
    fn ties_go_to_the_lowest_index() {
        let shards = [shard(2, false), shard(2, false), shard(2, false)];
        assert_eq!(least_loaded(&shards), Some(0));
    }

    #[test]
    fn an_overloaded_shard_is_skipped_however_empty() {
        let shards = [shard(0, true), shard(40, false)];
        assert_eq!(least_loaded(&shards), Some(1));
        assert_eq!(place(&shards), 1);
    }

    #[test]
    fn when_every_shard_is_overloaded_none_takes_new_calls_but_placement_still_answers() {
        let shards = [shard(9, true), shard(4, true)];
        assert_eq!(least_loaded(&shards), None);
        assert_eq!(place(&shards), 1);
        assert_eq!(least_loaded(&[]), None);
        assert_eq!(place(&[]), 0);
    }

    #[test]
    fn calls_placed_one_after_another_spread_evenly() {
        let mut shards = [shard(0, false); 4];
        for _ in 0..10 {
            let i = place(&shards);
            shards[i].streams += 1;
        }
        let counts: Vec<u64> = shards.iter().map(|c| c.streams).collect();
        assert_eq!(counts, [3, 3, 2, 2]);
    }
}
