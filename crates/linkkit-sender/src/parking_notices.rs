//! Tells the fan-out workers which endpoints this sender is parking jobs for (see
//! `linkkit_cache::parked`), so they park that endpoint's new jobs themselves. An endpoint is
//! written once per park, not once per job, and in the background: deciding to park stays a
//! cheap decision in memory.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use linkkit_cache::parked::ParkedEndpoints;
use linkkit_core::EndpointId;

/// A park that ends within this of the one already told is not worth another write.
const SLACK: chrono::Duration = chrono::Duration::milliseconds(250);
/// Endpoints remembered before lapsed parks are forgotten.
const PRUNE_ABOVE: usize = 10_000;

#[derive(Debug)]
pub struct ParkingNotices {
    parked: ParkedEndpoints,
    /// Until when each endpoint was last said to be parked.
    told: Mutex<HashMap<EndpointId, DateTime<Utc>>>,
}

impl ParkingNotices {
    pub fn new(parked: ParkedEndpoints) -> Self {
        Self {
            parked,
            told: Mutex::new(HashMap::new()),
        }
    }

    /// Says that `endpoint`'s jobs are parked until `until`, unless that was already said.
    /// A write that fails is only logged: the fan-out then sends the jobs the usual way and
    /// this sender parks them.
    pub fn tell(&self, endpoint: &EndpointId, until: DateTime<Utc>) {
        {
            let mut told = self.told.lock().expect("the notices are never poisoned");
            if told.len() > PRUNE_ABOVE {
                let now = Utc::now();
                told.retain(|_, known| *known > now);
            }
            if told
                .get(endpoint)
                .is_some_and(|known| *known + SLACK >= until)
            {
                return;
            }
            told.insert(endpoint.clone(), until);
        }
        let (parked, endpoint) = (self.parked.clone(), endpoint.clone());
        tokio::spawn(async move {
            if let Err(error) = parked.park(&endpoint, until).await {
                tracing::debug!(error = %error, endpoint_id = %endpoint, "could not share a parked endpoint");
            }
        });
    }
}
