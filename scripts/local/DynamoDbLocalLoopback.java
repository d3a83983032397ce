// DynamoDB Local on one address only. It has no bind option: its Jetty server listens on every interface. This
// launcher builds the server the way DynamoDB Local's own main does, gives its connectors the host from the system
// property `bind.host` (default 127.0.0.1) before it starts, and starts it. Run by the JDK's source launcher
// (`java -cp <DynamoDB Local's jars> DynamoDbLocalLoopback.java <its usual arguments>`), so nothing is compiled ahead.
import java.lang.reflect.Field;
import org.eclipse.jetty.server.Connector;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import software.amazon.dynamodb.services.local.main.ServerRunner;
import software.amazon.dynamodb.services.local.server.DynamoDBProxyServer;

public class DynamoDbLocalLoopback {
  public static void main(String[] args) throws Exception {
    DynamoDBProxyServer proxy = ServerRunner.createServerFromCommandLineArgs(args);
    Field field = DynamoDBProxyServer.class.getDeclaredField("server");
    field.setAccessible(true);
    Server server = (Server) field.get(proxy);
    String host = System.getProperty("bind.host", "127.0.0.1");
    for (Connector connector : server.getConnectors()) ((ServerConnector) connector).setHost(host);
    proxy.start();
  }
}
