# shellcheck shell=bash
# Apache Kafka 4.x, single node KRaft (combined broker + controller), from the broker jars on Maven
# Central: a generated pom + `mvn dependency:copy-dependencies` puts them in the cache, Java 17 runs
# kafka.Kafka with a small heap. Logs through log4j2 (slf4j binding included) to .brokers/kafka/logs.

KAFKA_VERSION="${EVENTWIRE_KAFKA_VERSION:-4.4.0}"
KAFKA_LOG4J_VERSION="${EVENTWIRE_KAFKA_LOG4J_VERSION:-2.25.5}"
KAFKA_HEAP="${EVENTWIRE_KAFKA_HEAP:--Xms512m -Xmx512m}"

kafka_apt_packages() {
  command -v java >/dev/null || echo openjdk-17-jre-headless
  command -v javac >/dev/null || echo openjdk-17-jdk-headless
  command -v mvn >/dev/null || echo maven
}

kafka_dist() { echo "$CACHE/kafka/$KAFKA_VERSION"; }
kafka_installed() { [ -f "$(kafka_dist)/.complete" ]; }

kafka_install() {
  local dist tmp
  dist=$(kafka_dist)
  tmp="$dist.tmp"
  rm -rf "$tmp" && mkdir -p "$tmp"
  cat >"$tmp/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.eventwire</groupId>
  <artifactId>kafka-broker</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>$KAFKA_VERSION</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId><version>$KAFKA_LOG4J_VERSION</version>
    </dependency>
  </dependencies>
</project>
POM
  log "kafka: resolving org.apache.kafka:kafka_2.13:$KAFKA_VERSION and its runtime dependencies with Maven"
  mvn -B -q -f "$tmp/pom.xml" org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$tmp/libs" || return 1
  # The readiness probe: a tiny Admin client that does a real metadata round trip.
  mkdir -p "$tmp/probe"
  cat >"$tmp/probe/EventwireKafkaProbe.java" <<'JAVA'
import java.util.Collection;
import java.util.Properties;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.DescribeClusterResult;
import org.apache.kafka.common.Node;

/** Exits 0 when the broker at args[0] answers a metadata request listing at least one live broker. */
public class EventwireKafkaProbe {
  public static void main(String[] args) throws Exception {
    Properties p = new Properties();
    p.put("bootstrap.servers", args[0]);
    p.put("request.timeout.ms", "3000");
    p.put("default.api.timeout.ms", "4000");
    p.put("socket.connection.setup.timeout.ms", "1000");
    p.put("socket.connection.setup.timeout.max.ms", "1000");
    try (Admin admin = Admin.create(p)) {
      DescribeClusterResult cluster = admin.describeCluster();
      Collection<Node> nodes = cluster.nodes().get(5, TimeUnit.SECONDS);
      admin.listTopics().names().get(5, TimeUnit.SECONDS);
      System.out.println("brokers=" + nodes.size());
      System.exit(nodes.isEmpty() ? 1 : 0);
    } catch (Exception e) {
      System.out.println("not ready: " + e);
      System.exit(1);
    }
  }
}
JAVA
  javac -nowarn -cp "$tmp/libs/*" -d "$tmp/probe" "$tmp/probe/EventwireKafkaProbe.java" || return 1
  touch "$tmp/.complete"
  rm -rf "$dist" && mv "$tmp" "$dist"
}

kafka_home() { echo "$STATE/kafka"; }
kafka_logs() { echo "$STATE/kafka/kafka.log" "$STATE/kafka/logs/server.log"; }
kafka_running() { pid_alive "$STATE/kafka/kafka.pid" kafka.Kafka >/dev/null; }

kafka_probe() {
  local dist
  dist=$(kafka_dist)
  timeout 20 java -Xmx96m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xshare:auto \
    -Dlog4j2.configurationFile="$(kafka_home)/log4j2-probe.xml" \
    -cp "$dist/probe:$dist/libs/*" EventwireKafkaProbe "127.0.0.1:$EVENTWIRE_KAFKA_PORT" 2>/dev/null
}

# A metadata request through the Java Admin client (after a cheap TCP check, to skip the JVM start
# while the port is still closed).
kafka_ready() { tcp_open "$EVENTWIRE_KAFKA_PORT" && kafka_probe >/dev/null; }

kafka_version() { cat "$(kafka_home)/version" 2>/dev/null; }

kafka_start() {
  local home dist
  home=$(kafka_home)
  dist=$(kafka_dist)
  mkdir -p "$home/data" "$home/logs"
  cat >"$home/server.properties" <<CONF
node.id=1
process.roles=broker,controller
controller.quorum.voters=1@127.0.0.1:$EVENTWIRE_KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$EVENTWIRE_KAFKA_PORT,CONTROLLER://127.0.0.1:$EVENTWIRE_KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$EVENTWIRE_KAFKA_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$home/data
num.network.threads=2
num.io.threads=4
num.partitions=1
default.replication.factor=1
auto.create.topics.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=5
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
CONF
  cat >"$home/log4j2.xml" <<'XML'
<?xml version="1.0" encoding="UTF-8"?>
<Configuration status="WARN">
  <Appenders>
    <RollingFile name="file" fileName="${sys:kafka.logs.dir}/server.log" filePattern="${sys:kafka.logs.dir}/server.log.%i">
      <PatternLayout pattern="[%d] %p %m (%c)%n"/>
      <Policies><SizeBasedTriggeringPolicy size="50 MB"/></Policies>
      <DefaultRolloverStrategy max="3"/>
    </RollingFile>
  </Appenders>
  <Loggers>
    <Logger name="kafka.request.logger" level="WARN"/>
    <Logger name="state.change.logger" level="WARN"/>
    <Root level="INFO"><AppenderRef ref="file"/></Root>
  </Loggers>
</Configuration>
XML
  cat >"$home/log4j2-probe.xml" <<'XML'
<?xml version="1.0" encoding="UTF-8"?>
<Configuration status="ERROR">
  <Appenders><Console name="err" target="SYSTEM_ERR"><PatternLayout pattern="%p %m%n"/></Console></Appenders>
  <Loggers><Root level="ERROR"><AppenderRef ref="err"/></Root></Loggers>
</Configuration>
XML
  local java_opts=(-Dlog4j2.configurationFile="$home/log4j2.xml" -Dkafka.logs.dir="$home/logs")
  # Storage is formatted once; the cluster id is random per data folder. The value is attached
  # (`--cluster-id=`): an id starting with '-' (1 in 64) was read as an option and failed.
  if [ ! -s "$home/data/meta.properties" ]; then
    local cluster_id
    cluster_id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | cut -c1-22)
    log "kafka: formatting storage (cluster id $cluster_id)"
    java -Xmx256m "${java_opts[@]}" -cp "$dist/libs/*" kafka.tools.StorageTool format \
      --cluster-id="$cluster_id" -c "$home/server.properties" >>"$home/kafka.log" 2>&1 || return 1
  fi
  echo "$KAFKA_VERSION" >"$home/version"
  # shellcheck disable=SC2086
  spawn "$home/kafka.pid" "$home/kafka.log" java $KAFKA_HEAP -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true \
    "${java_opts[@]}" -cp "$dist/libs/*" kafka.Kafka "$home/server.properties"
}

kafka_stop() { stop_pid "$STATE/kafka/kafka.pid" kafka.Kafka 90 "$EVENTWIRE_KAFKA_PORT"; }
