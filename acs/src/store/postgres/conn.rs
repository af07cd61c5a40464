//! A pooled connection and the statements prepared on it: each statement's text is prepared
//! once per connection and kept (a query given as text would be parsed and described again at
//! every call, a round trip more each time). The methods are rust-postgres's, by text.

use std::collections::HashMap;

use ::postgres::types::ToSql;
use ::postgres::{Client, Error, NoTls, Row, Statement, Transaction};
use r2d2_postgres::PostgresConnectionManager;

/// Parameters of a statement.
type Params<'p> = &'p [&'p (dyn ToSql + Sync)];

/// A connection of the pool.
pub(crate) struct Conn {
    client: Client,
    prepared: HashMap<String, Statement>,
}

/// A transaction on a [`Conn`], with its prepared statements.
pub(crate) struct Tx<'a> {
    tx: Transaction<'a>,
    prepared: &'a mut HashMap<String, Statement>,
}

/// The statement for `sql`, prepared on first use.
macro_rules! statement {
    ($on:expr, $prepared:expr, $sql:expr) => {
        match $prepared.get($sql) {
            Some(s) => s.clone(),
            None => {
                let s = $on.prepare($sql)?;
                $prepared.insert($sql.to_string(), s.clone());
                s
            }
        }
    };
}

impl Conn {
    pub(crate) fn query(&mut self, sql: &str, params: Params<'_>) -> Result<Vec<Row>, Error> {
        let s = statement!(self.client, self.prepared, sql);
        self.client.query(&s, params)
    }

    pub(crate) fn query_opt(&mut self, sql: &str, params: Params<'_>) -> Result<Option<Row>, Error> {
        let s = statement!(self.client, self.prepared, sql);
        self.client.query_opt(&s, params)
    }

    pub(crate) fn query_one(&mut self, sql: &str, params: Params<'_>) -> Result<Row, Error> {
        let s = statement!(self.client, self.prepared, sql);
        self.client.query_one(&s, params)
    }

    pub(crate) fn execute(&mut self, sql: &str, params: Params<'_>) -> Result<u64, Error> {
        let s = statement!(self.client, self.prepared, sql);
        self.client.execute(&s, params)
    }

    /// Statements without parameters, as given (not prepared).
    pub(crate) fn batch_execute(&mut self, sql: &str) -> Result<(), Error> {
        self.client.batch_execute(sql)
    }

    pub(crate) fn transaction(&mut self) -> Result<Tx<'_>, Error> {
        let Conn { client, prepared } = self;
        Ok(Tx { tx: client.transaction()?, prepared })
    }
}

impl Tx<'_> {
    pub(crate) fn query(&mut self, sql: &str, params: Params<'_>) -> Result<Vec<Row>, Error> {
        let s = statement!(self.tx, self.prepared, sql);
        self.tx.query(&s, params)
    }

    pub(crate) fn query_opt(&mut self, sql: &str, params: Params<'_>) -> Result<Option<Row>, Error> {
        let s = statement!(self.tx, self.prepared, sql);
        self.tx.query_opt(&s, params)
    }

    pub(crate) fn query_one(&mut self, sql: &str, params: Params<'_>) -> Result<Row, Error> {
        let s = statement!(self.tx, self.prepared, sql);
        self.tx.query_one(&s, params)
    }

    pub(crate) fn execute(&mut self, sql: &str, params: Params<'_>) -> Result<u64, Error> {
        let s = statement!(self.tx, self.prepared, sql);
        self.tx.execute(&s, params)
    }

    /// Statements without parameters, as given (not prepared).
    pub(crate) fn batch_execute(&mut self, sql: &str) -> Result<(), Error> {
        self.tx.batch_execute(sql)
    }

    pub(crate) fn commit(self) -> Result<(), Error> {
        self.tx.commit()
    }
}

/// The pool's connections: rust-postgres's manager, each connection with its statements.
#[derive(Debug)]
pub(crate) struct Manager(pub(crate) PostgresConnectionManager<NoTls>);

impl r2d2::ManageConnection for Manager {
    type Connection = Conn;
    type Error = Error;

    fn connect(&self) -> Result<Conn, Error> {
        Ok(Conn { client: self.0.connect()?, prepared: HashMap::new() })
    }

    fn is_valid(&self, c: &mut Conn) -> Result<(), Error> {
        c.client.simple_query("").map(drop)
    }

    fn has_broken(&self, c: &mut Conn) -> bool {
        c.client.is_closed()
    }
}
