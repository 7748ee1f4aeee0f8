//! Group commit: many concurrent callers, one statement.
//!
//! Workers handle hundreds of messages at once, and each used to run its own query: a round
//! trip, and for a write a commit, per message. A [`Grouped`] query collects what callers ask
//! while the previous groups are being run and runs them together in one statement, so the
//! cost per row falls as load rises, while a lone caller still waits only for its own query.
//! Each caller gets its own answer; a group that fails as a whole (a row that breaks a
//! constraint, a deadlock with another process) is run again one row at a time, so one bad row
//! never fails the others.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, Semaphore};

use crate::metrics::{GROUP_DURATION, GROUP_ROWS};
use crate::StoreError;

/// One statement for a whole group.
pub trait GroupQuery: Send + Sync + 'static {
    /// The `query` label of the group metrics.
    const NAME: &'static str;
    type Input: Send + Sync + 'static;
    type Output: Send + 'static;

    /// One output per input, in the same order.
    fn run(
        &self,
        inputs: &[Self::Input],
    ) -> impl Future<Output = Result<Vec<Self::Output>, StoreError>> + Send;
}

/// How large a group may grow, and how many groups may run at once (each holds one pooled
/// connection while it runs).
#[derive(Debug, Clone, Copy)]
pub struct GroupLimits {
    pub max_group: usize,
    pub in_parallel: usize,
}

impl Default for GroupLimits {
    fn default() -> Self {
        Self {
            max_group: 256,
            in_parallel: 1,
        }
    }
}

struct Request<Q: GroupQuery> {
    input: Q::Input,
    reply: oneshot::Sender<Result<Q::Output, StoreError>>,
}

/// A query that callers share; cheap to clone. Must be created inside a Tokio runtime: it
/// runs a task that lives as long as any clone does.
pub struct Grouped<Q: GroupQuery> {
    requests: mpsc::Sender<Request<Q>>,
}

impl<Q: GroupQuery> Clone for Grouped<Q> {
    fn clone(&self) -> Self {
        Self {
            requests: self.requests.clone(),
        }
    }
}

impl<Q: GroupQuery> std::fmt::Debug for Grouped<Q> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Grouped")
            .field("query", &std::any::type_name::<Q>())
            .finish()
    }
}

impl<Q: GroupQuery> Grouped<Q> {
    pub fn new(query: Q, limits: GroupLimits) -> Self {
        let max_group = limits.max_group.max(1);
        let in_parallel = limits.in_parallel.max(1);
        let (requests, receiver) = mpsc::channel(max_group * in_parallel * 2);
        tokio::spawn(run_groups(
            Arc::new(query),
            receiver,
            max_group,
            in_parallel,
        ));
        Self { requests }
    }

    /// Runs `input` with whatever else is waiting, and returns its own answer.
    pub async fn run(&self, input: Q::Input) -> Result<Q::Output, StoreError> {
        let (reply, answer) = oneshot::channel();
        let stopped = || StoreError::Stopped(std::any::type_name::<Q>());
        self.requests
            .send(Request { input, reply })
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

async fn run_groups<Q: GroupQuery>(
    query: Arc<Q>,
    mut receiver: mpsc::Receiver<Request<Q>>,
    max_group: usize,
    in_parallel: usize,
) {
    let slots = Arc::new(Semaphore::new(in_parallel));
    loop {
        // Wait for a free slot first: while every slot is busy, requests gather in the channel
        // and the next group is larger.
        let slot = slots
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        let Some(first) = receiver.recv().await else {
            return;
        };
        let mut group = vec![first];
        while group.len() < max_group {
            match receiver.try_recv() {
                Ok(request) => group.push(request),
                Err(_) => break,
            }
        }
        let query = query.clone();
        tokio::spawn(async move {
            let (inputs, replies): (Vec<_>, Vec<_>) =
                group.into_iter().map(|r| (r.input, r.reply)).unzip();
            let expected = inputs.len();
            GROUP_ROWS
                .with_label_values(&[Q::NAME])
                .observe(expected as f64);
            let timer = GROUP_DURATION.with_label_values(&[Q::NAME]).start_timer();
            let outputs = run_group(&*query, &inputs).await;
            timer.observe_duration();
            debug_assert_eq!(outputs.len(), expected, "one output per input");
            for (reply, output) in replies.into_iter().zip(outputs) {
                let _ = reply.send(output);
            }
            drop(slot);
        });
    }
}

/// The group as one statement; after a failure, each row alone (a lone row keeps its error).
async fn run_group<Q: GroupQuery>(
    query: &Q,
    inputs: &[Q::Input],
) -> Vec<Result<Q::Output, StoreError>> {
    let error = match query.run(inputs).await {
        Ok(outputs) => return outputs.into_iter().map(Ok).collect(),
        Err(error) if inputs.len() == 1 => return vec![Err(error)],
        Err(error) => error,
    };
    tracing::debug!(query = Q::NAME, rows = inputs.len(), error = %error, "a group failed; running its rows one by one");
    let mut outcomes = Vec::with_capacity(inputs.len());
    for input in inputs {
        let alone = query.run(std::slice::from_ref(input)).await;
        outcomes.push(alone.map(|mut outputs| outputs.pop().expect("one output per input")));
    }
    outcomes
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Doubles numbers, remembering the size of every group that succeeds; a group holding 13
    /// fails as a whole, as a statement with one bad row does.
    #[derive(Default)]
    struct Doubler {
        groups: std::sync::Mutex<Vec<usize>>,
        running: AtomicUsize,
        most_running: AtomicUsize,
    }

    impl GroupQuery for Arc<Doubler> {
        const NAME: &'static str = "doubler";
        type Input = u32;
        type Output = u32;

        async fn run(&self, inputs: &[u32]) -> Result<Vec<u32>, StoreError> {
            let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
            self.most_running.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            self.running.fetch_sub(1, Ordering::SeqCst);
            if inputs.contains(&13) {
                return Err(StoreError::Stopped("thirteen"));
            }
            self.groups.lock().unwrap().push(inputs.len());
            Ok(inputs.iter().map(|n| n * 2).collect())
        }
    }

    #[tokio::test]
    async fn concurrent_callers_share_groups_and_each_gets_its_own_answer() {
        let doubler = Arc::new(Doubler::default());
        let grouped = Grouped::new(
            doubler.clone(),
            GroupLimits {
                max_group: 50,
                in_parallel: 2,
            },
        );
        let calls: Vec<_> = (0..200u32)
            .map(|n| {
                let grouped = grouped.clone();
                tokio::spawn(async move { (n, grouped.run(n).await) })
            })
            .collect();
        for call in calls {
            let (n, answer) = call.await.unwrap();
            match n {
                13 => assert!(matches!(answer, Err(StoreError::Stopped("thirteen")))),
                n => assert_eq!(answer.unwrap(), n * 2),
            }
        }
        let groups = doubler.groups.lock().unwrap().clone();
        // Every row but 13 was answered by exactly one statement that succeeded: those that
        // shared a group with 13 were run again alone.
        assert_eq!(groups.iter().sum::<usize>(), 199);
        assert!(groups.iter().all(|&size| size <= 50), "{groups:?}");
        assert!(groups.len() < 200, "calls were grouped: {groups:?}");
        assert!(doubler.most_running.load(Ordering::SeqCst) <= 2);
    }

    #[tokio::test]
    async fn a_lone_caller_gets_its_own_answer() {
        let grouped = Grouped::new(Arc::new(Doubler::default()), GroupLimits::default());
        assert_eq!(grouped.run(21).await.unwrap(), 42);
    }
}
