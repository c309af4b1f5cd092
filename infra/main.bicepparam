// Example parameters for main.bicep. Copy it (e.g. to prod.bicepparam), fill in your values,
// and deploy:
//   az deployment group create -g <resource-group> -f infra/main.bicep -p infra/prod.bicepparam
// Every parameter not listed keeps main.bicep's default; see the @description of each there.
using './main.bicep'

// A region that offers Flex Consumption: az functionapp list-flexconsumption-locations -o table
param location = 'swedencentral'

// Globally unique: the API is https://<appName>.azurewebsites.net/api/signup
param appName = 'b2b-signup-contoso'

// Globally unique, 3-24 lower-case letters and digits.
param storageAccountName = 'stb2bsignupcontoso'
param siteStorageAccountName = 'webb2bsignupcontoso'

// The sign-up page is served from the static website deployed here; its origin is allowed
// automatically. Add any other origin that hosts the form (a custom domain in front of it),
// exactly as a browser sends it: scheme://host[:port], no path, no trailing slash.
param deploySignupSite = true
param corsAllowedOrigins = [
  'https://partners.contoso.com'
]

// Check the custom handler runtime version Flex Consumption offers in the region:
//   az functionapp list-flexconsumption-runtimes --location swedencentral --runtime custom -o table
param customHandlerRuntimeVersion = '1.0'

param instanceMemoryMB = 2048
// Per function scale group. 1 keeps Graph invitations near its per-tenant limit; read
// docs/DEPLOY.md, "Scale", before raising it.
param maximumInstanceCount = 1
param rustLog = 'info'

// The admin API: the appId output of infra/admin-api.bicep (deployed by someone with Cloud
// Application Administrator; docs/DEPLOY.md, "The admin API's app registration"). Empty keeps
// the admin API off until it exists.
param adminApiAppId = ''
// Mail to partners (verification links, approval, denial) and approvers: named in every mail.
param organizationName = 'Contoso'
param mailDataLocation = 'Europe'
param logRetentionDays = 30
param logDailyQuotaGb = 1

param tags = {
  workload: 'b2b-signup'
  environment: 'prod'
}
