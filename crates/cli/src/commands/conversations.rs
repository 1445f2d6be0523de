//! `wabill conversations`: one record per conversation.

use std::path::Path;
use std::process::ExitCode;

use wabill_engine::bill;

use super::{invoices_or_fatal, selected};
use crate::args::{ConversationFormat, ConversationsArgs};
use crate::exit::{Fatal, exit_code};
use crate::ingest::ingest_files;
use crate::output::{emit, stdout_is_terminal};

pub fn run(config_path: Option<&Path>, args: ConversationsArgs) -> Result<ExitCode, Fatal> {
    let ingested = ingest_files(config_path, &args.input, args.select.waba.as_deref())?;
    let billing = bill(&ingested.ledger, &ingested.book);
    let months = selected(&billing.months, &args.select);
    invoices_or_fatal(&months)?;
    let records = wabill_report::sorted_records(&billing, &months);
    let format = args.format.unwrap_or(if stdout_is_terminal() {
        ConversationFormat::Table
    } else {
        ConversationFormat::Ndjson
    });
    let text = match format {
        ConversationFormat::Ndjson => {
            let mut out = String::new();
            wabill_report::conversations_ndjson(&billing, &records, &mut out);
            out
        }
        ConversationFormat::Csv => wabill_report::conversations_csv(&billing, &records),
        ConversationFormat::Table => wabill_report::conversations_table(&billing, &records),
    };
    emit(&text)?;
    Ok(exit_code(ingested.refused()))
}
