//! What the node reports of consensus over JSON-RPC (`noesis_consensus`,
//! `eth_syncing`): the current view and its leader, the validator set, which
//! validators were heard from recently, and how far the committed chain is behind the
//! finalized tip.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use commonware_actor::Feedback;
use commonware_consensus::{
    Reporter, Viewable,
    simplex::{
        elector::{Config as _, Elector as _, RoundRobin},
        types::{Activity, Attributable},
    },
    types::{Epoch, Round, View},
};
use commonware_cryptography::{
    ed25519::PublicKey,
    sha256::{Digest, Sha256},
};
use commonware_utils::ordered::Set;
use parking_lot::Mutex;

use crate::{Progress, Scheme};

/// A validator counts as a live peer when one of its votes was seen within this many
/// views.
const LIVE_VIEWS: u64 = 20;

/// Consensus status shared between the engine and the RPC.
#[derive(Debug)]
pub struct Status {
    validators: Vec<PublicKey>,
    addresses: Vec<Option<SocketAddr>>,
    me: PublicKey,
    view: AtomicU64,
    /// Per validator (set order): the newest view one of its votes was seen in.
    heard: Mutex<Vec<Option<u64>>>,
    leaders:
        <RoundRobin<Sha256> as commonware_consensus::simplex::elector::Config<Scheme>>::Elector,
    progress: Arc<Progress>,
}

impl Status {
    /// Status of a validator `me` of `validators` (with their network addresses when
    /// known, in set order).
    pub fn new(
        validators: &Set<PublicKey>,
        addresses: Vec<Option<SocketAddr>>,
        me: PublicKey,
        progress: Arc<Progress>,
    ) -> Self {
        let keys: Vec<PublicKey> = validators.iter().cloned().collect();
        let mut addresses = addresses;
        addresses.resize(keys.len(), None);
        Self {
            heard: Mutex::new(vec![None; keys.len()]),
            validators: keys,
            addresses,
            me,
            view: AtomicU64::new(0),
            leaders: RoundRobin::<Sha256>::default().build(validators),
            progress,
        }
    }

    /// The newest view seen.
    pub fn view(&self) -> u64 {
        self.view.load(Ordering::Relaxed)
    }

    /// The leader of `view`.
    pub fn leader(&self, view: u64) -> Option<&PublicKey> {
        let index = self
            .leaders
            .elect(Round::new(Epoch::zero(), View::new(view)), ());
        self.validators.get(index.get() as usize)
    }

    /// Validators (other than this one) whose votes were seen in the last views.
    pub fn live_peers(&self) -> Vec<&PublicKey> {
        let view = self.view();
        let heard = self.heard.lock();
        self.validators
            .iter()
            .zip(heard.iter())
            .filter(|(key, last)| **key != self.me && last.is_some_and(|v| v + LIVE_VIEWS >= view))
            .map(|(key, _)| key)
            .collect()
    }

    /// Consensus progress (finalized tip and committed height).
    pub fn progress(&self) -> &Progress {
        &self.progress
    }

    /// `Some((starting, current, highest))` while the committed chain is behind the
    /// finalized tip by more than one block, as `eth_syncing` reports it.
    pub fn syncing(&self) -> Option<(u64, u64, u64)> {
        let committed = self.progress.committed.load(Ordering::Relaxed);
        let tip = self.progress.finalized_tip.load(Ordering::Relaxed);
        (tip > committed + 1).then(|| {
            let start = self.progress.started_at.load(Ordering::Relaxed);
            (start, committed, tip)
        })
    }

    /// The `noesis_consensus` answer.
    pub fn to_json(&self) -> serde_json::Value {
        let view = self.view();
        let validators: Vec<serde_json::Value> = self
            .validators
            .iter()
            .zip(&self.addresses)
            .map(|(key, address)| {
                serde_json::json!({
                    "publicKey": key.to_string(),
                    "address": address.map(|a| a.to_string()),
                })
            })
            .collect();
        serde_json::json!({
            "engine": "simplex",
            "view": view,
            "leader": self.leader(view).map(ToString::to_string),
            "me": self.me.to_string(),
            "validators": validators,
            "peers": self.live_peers().iter().map(|k| k.to_string()).collect::<Vec<_>>(),
            "finalizedTip": self.progress.finalized_tip.load(Ordering::Relaxed),
            "committed": self.progress.committed.load(Ordering::Relaxed),
        })
    }

    fn observe(&self, view: u64, signer: Option<usize>) {
        self.view.fetch_max(view, Ordering::Relaxed);
        if let Some(index) = signer
            && let Some(last) = self.heard.lock().get_mut(index)
        {
            *last = Some(last.map_or(view, |v| v.max(view)));
        }
    }
}

/// Feeds simplex activity into a [`Status`].
#[derive(Clone)]
pub struct StatusReporter(pub Arc<Status>);

impl Reporter for StatusReporter {
    type Activity = Activity<Scheme, Digest>;

    fn report(&mut self, activity: Self::Activity) -> Feedback {
        let signer = |s: commonware_utils::Participant| Some(s.get() as usize);
        let (view, signer) = match &activity {
            Activity::Notarize(v) => (v.view(), signer(v.signer())),
            Activity::Nullify(v) => (v.view(), signer(v.signer())),
            Activity::Finalize(v) => (v.view(), signer(v.signer())),
            Activity::Notarization(c) | Activity::Certification(c) => (c.view(), None),
            Activity::Nullification(c) => (c.view(), None),
            Activity::Finalization(c) => (c.view(), None),
            Activity::ConflictingNotarize(_)
            | Activity::ConflictingFinalize(_)
            | Activity::NullifyFinalize(_) => {
                tracing::warn!("a validator signed conflicting votes (Byzantine behaviour)");
                return Feedback::Ok;
            }
        };
        self.0.observe(view.get(), signer);
        Feedback::Ok
    }
}
