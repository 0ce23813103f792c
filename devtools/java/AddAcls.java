// Adds ACLs through Kafka's Admin API, for the secure local broker (devtools/secure_broker.py).
// Run as a single-file source program: java -cp 'KAFKA_LIBS/*' AddAcls.java BOOTSTRAP ADMIN_PROPS
// stdin: one ACL per line, tab-separated: principal, resource type (topic|group),
// pattern type (literal|prefixed), resource name, operation (Read|Write|Create|Describe).
// Kafka 4's jar set the project caches has no kafka-tools (kafka-acls.sh's AclCommand), so the
// same lines that `gateway acls --format kafka-acls` prints are parsed in Python and sent here.
import java.io.BufferedReader;
import java.io.FileInputStream;
import java.io.InputStreamReader;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Properties;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.common.acl.AccessControlEntry;
import org.apache.kafka.common.acl.AclBinding;
import org.apache.kafka.common.acl.AclOperation;
import org.apache.kafka.common.acl.AclPermissionType;
import org.apache.kafka.common.resource.PatternType;
import org.apache.kafka.common.resource.ResourcePattern;
import org.apache.kafka.common.resource.ResourceType;

public class AddAcls {
    public static void main(String[] args) throws Exception {
        Properties props = new Properties();
        try (FileInputStream in = new FileInputStream(args[1])) {
            props.load(in);
        }
        props.put("bootstrap.servers", args[0]);
        List<AclBinding> bindings = new ArrayList<>();
        BufferedReader reader = new BufferedReader(new InputStreamReader(System.in, "UTF-8"));
        for (String line = reader.readLine(); line != null; line = reader.readLine()) {
            if (line.isBlank()) continue;
            String[] f = line.split("\t");
            ResourcePattern pattern = new ResourcePattern(
                ResourceType.fromString(f[1].toUpperCase(Locale.ROOT)), f[3],
                PatternType.fromString(f[2].toUpperCase(Locale.ROOT)));
            AccessControlEntry entry = new AccessControlEntry(
                f[0], "*", AclOperation.fromString(f[4].toUpperCase(Locale.ROOT)),
                AclPermissionType.ALLOW);
            bindings.add(new AclBinding(pattern, entry));
        }
        try (Admin admin = Admin.create(props)) {
            admin.createAcls(bindings).all().get();
        }
        System.out.println("added " + bindings.size() + " ACLs");
    }
}
