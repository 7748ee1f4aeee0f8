//! Where a scenario's CPU went: the time RabbitMQ, PostgreSQL, Redis, this process (Linkkit's
//! services and the harness) and everything else spent, read from `/proc` before and after,
//! per message or per delivery. The ratio to the ceiling says how fast Linkkit is; this says
//! which process it would take to make it faster, and whether the broker is what binds.

use std::collections::HashMap;
use std::time::Instant;

/// The processes a figure is split by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Part {
    RabbitMq,
    Postgres,
    Redis,
    /// The harness's own process: Linkkit's services run in it, beside the harness's publisher
    /// and receiver (and its load generator, in the redirect scenario).
    ThisProcess,
    /// `linkkit` processes the harness started (the redirect in its scenario).
    LinkkitProcesses,
    Other,
    Idle,
}

impl Part {
    pub const ALL: [Part; 7] = [
        Part::RabbitMq,
        Part::Postgres,
        Part::Redis,
        Part::ThisProcess,
        Part::LinkkitProcesses,
        Part::Other,
        Part::Idle,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Part::RabbitMq => "RabbitMQ",
            Part::Postgres => "PostgreSQL",
            Part::Redis => "Redis",
            Part::ThisProcess => "Linkkit and the harness (this process)",
            Part::LinkkitProcesses => "linkkit processes",
            Part::Other => "other processes",
            Part::Idle => "idle",
        }
    }

    fn of(pid: u32, comm: &str) -> Part {
        match comm {
            _ if pid == std::process::id() => Part::ThisProcess,
            "beam.smp" | "erl_child_setup" | "epmd" => Part::RabbitMq,
            "postgres" => Part::Postgres,
            "redis-server" => Part::Redis,
            "linkkit" => Part::LinkkitProcesses,
            _ => Part::Other,
        }
    }
}

/// CPU ticks of every process and of the whole machine at one moment.
#[derive(Debug)]
pub struct Snapshot {
    at: Instant,
    /// pid → (part, ticks of the process and of its children it has reaped, so the backends
    /// PostgreSQL's postmaster reaped between two snapshots still count).
    processes: HashMap<u32, (Part, u64)>,
    machine_total: u64,
    machine_idle: u64,
}

/// The machine's time over an interval, split by part.
#[derive(Debug, Clone)]
pub struct CpuUse {
    /// Core-seconds each part used.
    seconds: HashMap<Part, f64>,
}

impl Snapshot {
    pub fn take() -> Snapshot {
        let mut processes = HashMap::new();
        if let Ok(entries) = std::fs::read_dir("/proc") {
            for entry in entries.flatten() {
                let Some(pid) = entry
                    .file_name()
                    .to_str()
                    .and_then(|n| n.parse::<u32>().ok())
                else {
                    continue;
                };
                if let Some((comm, ticks)) = std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .ok()
                    .and_then(|stat| process_ticks(&stat))
                {
                    processes.insert(pid, (Part::of(pid, &comm), ticks));
                }
            }
        }
        let (machine_total, machine_idle) = std::fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|stat| machine_ticks(&stat))
            .unwrap_or((0, 0));
        Snapshot {
            at: Instant::now(),
            processes,
            machine_total,
            machine_idle,
        }
    }

    /// What each part used between `earlier` and this snapshot. A process that started in
    /// between counts from zero; one that ended in between counts in its parent once reaped.
    pub fn since(&self, earlier: &Snapshot) -> CpuUse {
        let wall = self.at.duration_since(earlier.at);
        let total_ticks = self.machine_total.saturating_sub(earlier.machine_total);
        let core_seconds = |ticks: u64| {
            if total_ticks == 0 {
                return 0.0;
            }
            ticks as f64 / total_ticks as f64 * cores() * wall.as_secs_f64()
        };
        let mut ticks: HashMap<Part, u64> = HashMap::new();
        for (pid, (part, now)) in &self.processes {
            let before = earlier.processes.get(pid).map_or(0, |(_, t)| *t);
            *ticks.entry(*part).or_default() += now.saturating_sub(before);
        }
        let idle = self.machine_idle.saturating_sub(earlier.machine_idle);
        let mut seconds: HashMap<Part, f64> = ticks
            .into_iter()
            .map(|(p, t)| (p, core_seconds(t)))
            .collect();
        seconds.insert(Part::Idle, core_seconds(idle));
        CpuUse { seconds }
    }
}

impl CpuUse {
    /// Microseconds of one core that `part` spent per item (message, delivery) of the interval.
    pub fn micros_per(&self, part: Part, items: usize) -> f64 {
        self.seconds.get(&part).copied().unwrap_or(0.0) * 1e6 / items.max(1) as f64
    }

    /// Microseconds of one core per item, every part but idle.
    pub fn busy_micros_per(&self, items: usize) -> f64 {
        Part::ALL
            .iter()
            .filter(|p| **p != Part::Idle)
            .map(|p| self.micros_per(*p, items))
            .sum()
    }
}

/// The machine's CPU while a future runs.
pub async fn measure<T>(work: impl std::future::Future<Output = T>) -> (T, CpuUse) {
    let before = Snapshot::take();
    let value = work.await;
    (value, Snapshot::take().since(&before))
}

/// Every part that did anything in the measurements, with the microseconds of one core it
/// spent per item in each (`uses` pairs a measurement with its number of items).
pub fn micros_by_part(uses: &[(CpuUse, usize)]) -> Vec<(Part, Vec<f64>)> {
    Part::ALL
        .iter()
        .map(|part| {
            let values: Vec<f64> = uses.iter().map(|(u, n)| u.micros_per(*part, *n)).collect();
            (*part, values)
        })
        .filter(|(_, values)| values.iter().any(|v| *v >= 0.05))
        .collect()
}

fn cores() -> f64 {
    std::thread::available_parallelism().map_or(1.0, |n| n.get() as f64)
}

/// The command name and utime + stime + cutime + cstime of a `/proc/<pid>/stat` line. The
/// name is in parentheses and may hold spaces, so fields are counted after its last `)`.
fn process_ticks(stat: &str) -> Option<(String, u64)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat.get(open + 1..close)?.to_owned();
    let fields: Vec<&str> = stat.get(close + 1..)?.split_whitespace().collect();
    // After the name: state is field 3 of the line, utime field 14 … cstime field 17.
    let ticks = fields
        .get(11..15)?
        .iter()
        .map(|f| f.parse::<u64>().unwrap_or(0))
        .sum();
    Some((comm, ticks))
}

/// All ticks and idle ticks (idle + iowait) of the machine, from the `cpu` line of `/proc/stat`.
fn machine_ticks(stat: &str) -> Option<(u64, u64)> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let values: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .take(8) // user nice system idle iowait irq softirq steal; guest is inside user
        .map(|v| v.parse().unwrap_or(0))
        .collect();
    let idle = values.get(3)? + values.get(4)?;
    Some((values.iter().sum(), idle))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_line_gives_its_name_and_all_its_ticks() {
        let stat = "4242 (beam.smp (x)) S 1 4242 4242 0 -1 4194560 500 0 0 0 \
                    120 30 7 3 20 0 40 0 100 0 0";
        assert_eq!(
            process_ticks(stat),
            Some(("beam.smp (x)".to_owned(), 120 + 30 + 7 + 3))
        );
    }

    #[test]
    fn the_machine_line_gives_every_tick_and_the_idle_ones() {
        let stat = "cpu  100 5 50 800 20 3 2 0 0 0\ncpu0 50 2 25 400 10 1 1 0 0 0\n";
        assert_eq!(machine_ticks(stat), Some((980, 820)));
    }

    #[test]
    fn this_process_the_broker_and_the_database_are_told_apart() {
        assert_eq!(
            Part::of(std::process::id(), "linkkit-bench"),
            Part::ThisProcess
        );
        assert_eq!(Part::of(1, "beam.smp"), Part::RabbitMq);
        assert_eq!(Part::of(1, "postgres"), Part::Postgres);
        assert_eq!(Part::of(1, "redis-server"), Part::Redis);
        assert_eq!(Part::of(1, "linkkit"), Part::LinkkitProcesses);
        assert_eq!(Part::of(1, "sshd"), Part::Other);
    }
}
