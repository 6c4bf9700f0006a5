//! The test bed is real: S3 through LocalStack (path-style), Glue through the moto sidecar, and
//! a consumer group that commits and resumes through the Kafka broker.
//!
//! Endpoints and brokers come from `environments/dev.toml`, exactly as indutech uses them.
//! Each test uses fresh, unique names, so the bed is shared and never restarted. If the bed is
//! not running, every test fails and says to start it with `localstack/up.sh`.

use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use aws_sdk_glue::types::{Column, DatabaseInput, SerDeInfo, StorageDescriptor, TableInput};
use indutech::aws::Aws;
use indutech::config::environment::Environment;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Message, Offset, TopicPartitionList};

/// The dev environment, after checking that every endpoint it names answers on TCP.
fn dev() -> Environment {
    let environment = indutech::config::load(concat!(env!("CARGO_MANIFEST_DIR"), "/environments/dev.toml"))
        .unwrap_or_else(|e| panic!("environments/dev.toml must be valid: {e}"));
    let mut addresses: Vec<String> = environment.redpanda.bootstrap_servers.clone();
    for service in ["s3", "glue"] {
        let url = environment.endpoints.for_service(service).expect("dev overrides every endpoint");
        addresses.push(url.trim_start_matches("http://").trim_end_matches('/').to_owned());
    }
    for address in addresses {
        let socket: SocketAddr = address.parse().unwrap();
        if TcpStream::connect_timeout(&socket, Duration::from_secs(2)).is_err() {
            panic!("the test bed is not running ({address} does not answer): start it with localstack/up.sh");
        }
    }
    environment
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

#[tokio::test]
async fn s3_round_trip_through_localstack_path_style() {
    let aws = Aws::new(&dev()).await;
    let s3 = aws.s3();
    // A dotted bucket name cannot be addressed virtual-host style over http on 127.0.0.1;
    // this works only because the client uses path-style requests.
    let bucket = unique("indutech.test");
    s3.create_bucket().bucket(&bucket).send().await.expect("create bucket");
    let body = b"dt=2026-11-21 round trip \xe2\x9c\x93".to_vec();
    s3.put_object()
        .bucket(&bucket)
        .key("curated/client_tickets/dt=2026-11-21/part-0.parquet")
        .body(body.clone().into())
        .send()
        .await
        .expect("put object");
    let got = s3
        .get_object()
        .bucket(&bucket)
        .key("curated/client_tickets/dt=2026-11-21/part-0.parquet")
        .send()
        .await
        .expect("get object");
    let read = got.body.collect().await.expect("read body").into_bytes();
    assert_eq!(read.as_ref(), body.as_slice());
    let listed = s3.list_objects_v2().bucket(&bucket).prefix("curated/").send().await.expect("list");
    let keys: Vec<&str> = listed.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, ["curated/client_tickets/dt=2026-11-21/part-0.parquet"]);

    s3.delete_object().bucket(&bucket).key(keys[0]).send().await.expect("delete object");
    s3.delete_bucket().bucket(&bucket).send().await.expect("delete bucket");
    let gone = s3.head_bucket().bucket(&bucket).send().await;
    assert!(gone.is_err(), "bucket {bucket} still exists after delete");
}

#[tokio::test]
async fn glue_table_create_and_get_through_the_sidecar() {
    let environment = dev();
    let aws = Aws::new(&environment).await;
    let glue = aws.glue();
    let stream = environment.streams.iter().find(|s| s.name == "client_tickets").unwrap();
    let database = unique("indutech_test").replace('-', "_");
    glue.create_database()
        .database_input(DatabaseInput::builder().name(&database).build().unwrap())
        .send()
        .await
        .expect("create database");

    let columns: Vec<Column> = stream
        .columns()
        .iter()
        .map(|(name, field_type)| Column::builder().name(name).r#type(field_type.as_str()).build().unwrap())
        .collect();
    let table = TableInput::builder()
        .name(&stream.name)
        .table_type("EXTERNAL_TABLE")
        .partition_keys(Column::builder().name(&stream.partition_key).r#type("string").build().unwrap())
        .storage_descriptor(
            StorageDescriptor::builder()
                .set_columns(Some(columns))
                .location(format!("s3://indutech-dev-curated/{}/", stream.name))
                .input_format("org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat")
                .output_format("org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat")
                .serde_info(
                    SerDeInfo::builder()
                        .serialization_library("org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe")
                        .build(),
                )
                .build(),
        )
        .build()
        .unwrap();
    glue.create_table().database_name(&database).table_input(table).send().await.expect("create table");

    let got = glue.get_table().database_name(&database).name(&stream.name).send().await.expect("get table");
    let got = got.table().expect("table in answer");
    let got_columns: Vec<(String, String)> = got
        .storage_descriptor()
        .unwrap()
        .columns()
        .iter()
        .map(|c| (c.name().to_owned(), c.r#type().unwrap_or_default().to_owned()))
        .collect();
    let want_columns: Vec<(String, String)> =
        stream.columns().into_iter().map(|(name, t)| (name, t.as_str().to_owned())).collect();
    assert_eq!(got_columns, want_columns);
    assert_eq!(got_columns.first().map(|c| c.0.as_str()), Some("ticket_id"));
    let partition_keys: Vec<&str> = got.partition_keys().iter().map(|c| c.name()).collect();
    assert_eq!(partition_keys, ["dt"]);

    glue.delete_database().name(&database).send().await.expect("delete database");
    assert!(glue.get_database().name(&database).send().await.is_err(), "database {database} still exists");
}

fn kafka_config(environment: &Environment) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", environment.redpanda.bootstrap_servers.join(","));
    config
}

fn group_consumer(environment: &Environment, group: &str, topic: &str) -> StreamConsumer {
    let consumer: StreamConsumer = kafka_config(environment)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "6000")
        .create()
        .expect("create consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    consumer
}

async fn next_payload(consumer: &StreamConsumer) -> (i64, String) {
    let message = tokio::time::timeout(Duration::from_secs(30), consumer.recv())
        .await
        .expect("a message within 30 s")
        .expect("a message, not an error");
    let payload = String::from_utf8(message.payload().unwrap().to_vec()).unwrap();
    (message.offset(), payload)
}

#[tokio::test]
async fn consumer_group_commits_and_resumes_through_the_broker() {
    let environment = dev();
    let topic = unique("indutech-test");
    let group = unique("indutech-test-group");

    let admin: AdminClient<DefaultClientContext> = kafka_config(&environment).create().expect("admin client");
    let created = admin
        .create_topics(&[NewTopic::new(&topic, 1, TopicReplication::Fixed(1))], &AdminOptions::new())
        .await
        .expect("create topics");
    assert!(created.iter().all(Result::is_ok), "create topic {topic}: {created:?}");

    let producer: FutureProducer =
        kafka_config(&environment).set("message.timeout.ms", "20000").create().expect("producer");
    for i in 0..10 {
        let payload = format!("{{\"n\":{i}}}");
        producer
            .send(FutureRecord::to(&topic).key("k").payload(&payload), Duration::from_secs(20))
            .await
            .unwrap_or_else(|(e, _)| panic!("produce message {i}: {e}"));
    }

    // First member: reads four, commits after the fourth, leaves.
    {
        let consumer = group_consumer(&environment, &group, &topic);
        for i in 0..4 {
            let (offset, payload) = next_payload(&consumer).await;
            assert_eq!((offset, payload), (i, format!("{{\"n\":{i}}}")));
            if i == 3 {
                consumer.commit_consumer_state(CommitMode::Sync).expect("commit");
            }
        }
        let committed = consumer.committed(Duration::from_secs(10)).expect("read committed offsets");
        let offset = committed.find_partition(&topic, 0).expect("partition 0").offset();
        assert_eq!(offset, Offset::Offset(4));
    }

    // Second member of the same group resumes at the committed offset, not at the start.
    let consumer = group_consumer(&environment, &group, &topic);
    for i in 4..10 {
        let (offset, payload) = next_payload(&consumer).await;
        assert_eq!((offset, payload), (i, format!("{{\"n\":{i}}}")));
    }
    let mut offsets = TopicPartitionList::new();
    offsets.add_partition_offset(&topic, 0, Offset::Offset(10)).unwrap();
    consumer.commit(&offsets, CommitMode::Sync).expect("commit end");
    let committed = consumer.committed(Duration::from_secs(10)).expect("read committed offsets");
    assert_eq!(committed.find_partition(&topic, 0).unwrap().offset(), Offset::Offset(10));
}
