// Runs once, when the MongoDB volume is empty (docker-entrypoint-initdb.d, as the root user): one
// user per service and one for the portal, allowed to read and write its own database and nothing
// else. The passwords come from deploy/compose/secrets/mongodb.env (`uv run lotse deploy compose-secrets`).
for (const service of ["registry", "matching", "notifications", "portal"]) {
  const password = process.env[`LOTSE_MONGO_${service.toUpperCase()}_PASSWORD`];
  if (!password) {
    throw new Error(`LOTSE_MONGO_${service.toUpperCase()}_PASSWORD is not set`);
  }
  db.getSiblingDB(service).createUser({
    user: `lotse-${service}`,
    pwd: password,
    roles: [{ role: "readWrite", db: service }],
  });
}
