//! Settling a channel's messages together: one `basic.ack` with `multiple` for a run of
//! finished messages instead of one frame per message.
//!
//! Handlers finish out of order. Every settlement of a channel goes through one task, which
//! knows which delivery tags are still in hand: the finished messages below the oldest one still
//! in hand are acknowledged with a single `multiple` ack; finished messages above it are acked
//! one by one, so a slow message never holds back the acks of the others (the broker would
//! otherwise stop sending once `prefetch` messages were unacknowledged). Requeues (nacks) are
//! sent first, so a `multiple` ack never covers a message meant to go back.

use std::collections::BTreeSet;

use lapin::options::{BasicAckOptions, BasicNackOptions};
use lapin::Channel;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// What became of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settlement {
    /// Done with: acknowledge.
    Ack,
    /// Return it to the queue.
    Requeue,
}

enum Note {
    /// The consumer took this message; it is in hand until settled.
    Taken(u64),
    Settled(u64, Settlement),
}

/// The sending side, cloned into every handler task of the channel.
#[derive(Debug, Clone)]
pub struct Acks {
    notes: mpsc::UnboundedSender<Note>,
}

impl Acks {
    /// Starts the settling task of `channel`; it ends once every `Acks` clone is dropped and
    /// everything noted is sent.
    pub fn start(channel: Channel) -> (Self, JoinHandle<()>) {
        let (notes, receiver) = mpsc::unbounded_channel();
        let task = tokio::spawn(run(channel, receiver));
        (Self { notes }, task)
    }

    /// Call before the message's handler starts, in the order the messages arrived.
    pub fn taken(&self, delivery_tag: u64) {
        let _ = self.notes.send(Note::Taken(delivery_tag));
    }

    pub fn settle(&self, delivery_tag: u64, settlement: Settlement) {
        let _ = self.notes.send(Note::Settled(delivery_tag, settlement));
    }
}

async fn run(channel: Channel, mut notes: mpsc::UnboundedReceiver<Note>) {
    let mut ledger = Ledger::default();
    while let Some(note) = notes.recv().await {
        ledger.note(note);
        while let Ok(note) = notes.try_recv() {
            ledger.note(note);
        }
        let frames = ledger.frames();
        if let Err(error) = send(&channel, frames).await {
            // The channel is gone: the broker returns its unacknowledged messages to the queue.
            tracing::warn!(error = %error, "could not settle messages");
        }
    }
}

/// What the settling task knows about its channel, and the frames that follow from it.
#[derive(Debug, Default)]
struct Ledger {
    in_hand: BTreeSet<u64>,
    to_ack: Vec<u64>,
    to_requeue: Vec<u64>,
}

#[derive(Debug, PartialEq, Eq)]
enum Frame {
    Requeue(u64),
    Ack(u64),
    AckUpTo(u64),
}

impl Ledger {
    fn note(&mut self, note: Note) {
        match note {
            Note::Taken(tag) => {
                self.in_hand.insert(tag);
            }
            Note::Settled(tag, settlement) => {
                self.in_hand.remove(&tag);
                match settlement {
                    Settlement::Ack => self.to_ack.push(tag),
                    Settlement::Requeue => self.to_requeue.push(tag),
                }
            }
        }
    }

    /// The frames that settle everything noted so far, in the order they must be sent.
    fn frames(&mut self) -> Vec<Frame> {
        let mut frames: Vec<Frame> = self.to_requeue.drain(..).map(Frame::Requeue).collect();
        let oldest_in_hand = self.in_hand.first().copied().unwrap_or(u64::MAX);
        self.to_ack.sort_unstable();
        let below = self.to_ack.partition_point(|&tag| tag < oldest_in_hand);
        // Every unacknowledged message below the oldest in hand is in `to_ack`: the others
        // were settled by earlier frames or by the requeues just before.
        match below {
            0 => {}
            1 => frames.push(Frame::Ack(self.to_ack[0])),
            n => frames.push(Frame::AckUpTo(self.to_ack[n - 1])),
        }
        frames.extend(self.to_ack[below..].iter().map(|&tag| Frame::Ack(tag)));
        self.to_ack.clear();
        frames
    }
}

/// Sends the frames in order (lapin writes them in the order they are issued).
async fn send(channel: &Channel, frames: Vec<Frame>) -> Result<(), lapin::Error> {
    for frame in frames {
        match frame {
            Frame::Requeue(tag) => {
                let requeue = BasicNackOptions {
                    requeue: true,
                    multiple: false,
                };
                channel.basic_nack(tag, requeue).await?
            }
            Frame::Ack(tag) => channel.basic_ack(tag, BasicAckOptions::default()).await?,
            Frame::AckUpTo(tag) => {
                channel
                    .basic_ack(tag, BasicAckOptions { multiple: true })
                    .await?
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ledger(taken: impl IntoIterator<Item = u64>) -> Ledger {
        let mut ledger = Ledger::default();
        for tag in taken {
            ledger.note(Note::Taken(tag));
        }
        ledger
    }

    #[test]
    fn a_finished_run_is_acknowledged_by_one_frame() {
        let mut ledger = ledger(1..=5);
        for tag in [3, 1, 2, 5, 4] {
            ledger.note(Note::Settled(tag, Settlement::Ack));
        }
        assert_eq!(ledger.frames(), vec![Frame::AckUpTo(5)]);
        assert_eq!(ledger.frames(), vec![]);
    }

    #[test]
    fn a_slow_message_does_not_hold_back_the_acks_after_it() {
        let mut ledger = ledger(1..=4);
        for tag in [1, 3, 4] {
            ledger.note(Note::Settled(tag, Settlement::Ack));
        }
        assert_eq!(
            ledger.frames(),
            vec![Frame::Ack(1), Frame::Ack(3), Frame::Ack(4)]
        );
        ledger.note(Note::Settled(2, Settlement::Ack));
        assert_eq!(ledger.frames(), vec![Frame::Ack(2)]);
    }

    #[test]
    fn requeues_go_first_and_are_never_covered_by_a_multiple_ack() {
        let mut ledger = ledger(1..=4);
        ledger.note(Note::Settled(2, Settlement::Requeue));
        for tag in [1, 3, 4] {
            ledger.note(Note::Settled(tag, Settlement::Ack));
        }
        // The requeue of 2 is sent before the ack of everything up to 4, so the broker has
        // already taken 2 back when the multiple ack arrives.
        assert_eq!(ledger.frames(), vec![Frame::Requeue(2), Frame::AckUpTo(4)]);
    }

    #[test]
    fn messages_taken_later_are_not_covered() {
        let mut ledger = ledger(1..=3);
        ledger.note(Note::Settled(1, Settlement::Ack));
        ledger.note(Note::Settled(2, Settlement::Ack));
        assert_eq!(ledger.frames(), vec![Frame::AckUpTo(2)]);
        ledger.note(Note::Taken(4));
        ledger.note(Note::Settled(4, Settlement::Ack));
        assert_eq!(ledger.frames(), vec![Frame::Ack(4)]);
    }
}
