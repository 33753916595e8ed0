//! Group commit for `ReportProgress`. Every client reports every few seconds, so with
//! thousands of clients one write transaction per report would serialize them on the database
//! (SQLite has one writer; each commit is a sync). Reports go to one writer task instead; it
//! takes whatever is queued (up to `progress_batch`, default 512), writes it in one transaction and answers
//! each caller after the commit. A lone report is written at once: batching adds no delay,
//! it only shares commits when reports arrive faster than commits finish.

use tokio::sync::{mpsc, oneshot};

use crate::db::{Db, ProgressRow, Reported};
use crate::error::{CtlError, CtlResult};

/// Reports waiting for the writer before callers wait to enqueue (bounded memory).
const QUEUE: usize = 8192;

type Pending = (ProgressRow, oneshot::Sender<CtlResult<Reported>>);

/// Handle to the progress writer.
#[derive(Clone)]
pub(crate) struct ProgressWriter {
    tx: mpsc::Sender<Pending>,
}

impl ProgressWriter {
    /// Starts the writer task over `db`, writing up to `max_batch` reports per transaction.
    pub(crate) fn start(db: Db, max_batch: usize) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(write_loop(db, rx, max_batch.max(1)));
        ProgressWriter { tx }
    }

    /// Records one report; returns the assignment state after it and the distribution's
    /// failure reason, if any (see [`Db::report_progress_batch`]), once committed.
    pub(crate) async fn report(&self, row: ProgressRow) -> CtlResult<Reported> {
        let (done, answer) = oneshot::channel();
        self.tx.send((row, done)).await.map_err(|_| CtlError::Precondition("ctl is shutting down".into()))?;
        answer.await.map_err(|_| CtlError::Precondition("the progress writer stopped".into()))?
    }
}

async fn write_loop(db: Db, mut rx: mpsc::Receiver<Pending>, max_batch: usize) {
    let mut batch: Vec<Pending> = Vec::with_capacity(max_batch);
    while rx.recv_many(&mut batch, max_batch).await > 0 {
        let (rows, answers): (Vec<ProgressRow>, Vec<_>) = batch.drain(..).unzip();
        match db.report_progress_batch(&rows).await {
            Ok(results) => {
                for (done, r) in answers.into_iter().zip(results) {
                    let _ = done.send(r);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, reports = rows.len(), "progress batch failed");
                let msg = e.to_string();
                for done in answers {
                    let _ = done.send(Err(CtlError::Corrupt(format!("progress not stored: {msg}"))));
                }
            }
        }
    }
}
