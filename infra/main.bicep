// b2b-signup — everything the sign-up backend needs in Azure, in one resource group:
//
//   storage (app)   host state, deployment package, tables SignupRequests (rows and address claims) /
//                   SignupDeadLetters, SignupRateLimits, queues signup-requests / signup-requests-poison; keys off
//   storage (site)  static website hosting the partner sign-up page (optional)
//   monitoring      Log Analytics workspace + Application Insights (Entra-authenticated ingestion)
//   function app    Flex Consumption (FC1, Linux), custom handler, system-assigned identity
//   RBAC            data-plane roles for that identity, scoped to the resources it uses
//
// Microsoft Graph permissions for the identity are granted separately, by a tenant
// administrator: graph-permissions.bicep. The admin API's app registration is also created
// separately, with a tenant role (admin-api.bicep); its appId comes back here as adminApiAppId.
// Deploy, package and publish: docs/DEPLOY.md.

targetScope = 'resourceGroup'

@description('Azure region; it must offer Flex Consumption (az functionapp list-flexconsumption-locations).')
param location string = resourceGroup().location

@description('Function App name, also its host name <appName>.azurewebsites.net: globally unique.')
@minLength(2)
@maxLength(60)
param appName string = 'b2b-signup-${uniqueString(resourceGroup().id)}'

@description('App storage account name: 3-24 lower-case letters and digits, globally unique.')
@minLength(3)
@maxLength(24)
param storageAccountName string = 'stsignup${uniqueString(resourceGroup().id)}'

@description('Deploy a storage static website for the sign-up page. Its origin is then allowed by CORS.')
param deploySignupSite bool = true

@description('Sign-up page storage account name: 3-24 lower-case letters and digits, globally unique.')
@minLength(3)
@maxLength(24)
param siteStorageAccountName string = 'websignup${uniqueString(resourceGroup().id)}'

@description('Other browser origins allowed to call the API (CORS), exactly as browsers send them: scheme://host[:port], no path, no trailing slash. "*" is ignored.')
param corsAllowedOrigins array = []

@description('Microsoft Graph base URL; change it only for a national cloud.')
param graphBaseUrl string = 'https://graph.microsoft.com/v1.0'

@description('Flex Consumption runtime version of the custom handler stack; check with: az functionapp list-flexconsumption-runtimes --location <region> --runtime custom')
param customHandlerRuntimeVersion string = '1.0'

@description('Memory of one instance in MB.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Upper bound on instances of each function scale group (five here: http, InviteQueue, InvitePoison, Reconcile, Lifecycle). 1 keeps invitations near Microsoft Graph\'s per-tenant limit (150 per 5 s): docs/DEPLOY.md, "Scale".')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 1

@description('Name of the Communication Services resource that sends mail to partners and approvers (globally unique).')
param communicationServiceName string = 'acs-${uniqueString(resourceGroup().id)}'

@description('Where mail data is kept at rest (Communication Services data location, e.g. Europe, United States).')
param mailDataLocation string = 'Europe'

@description('The organisation named in every mail (SIGNUP_ORG_NAME).')
param organizationName string

@description('Application (client) id of the admin API\'s app registration: the appId output of admin-api.bicep. Set as SIGNUP_ADMIN_APP_ID; empty: the admin API is off (every call 401).')
param adminApiAppId string = ''

@description('RUST_LOG filter for the handler.')
param rustLog string = 'info'

@description('Days logs are kept in Log Analytics.')
@minValue(30)
@maxValue(730)
param logRetentionDays int = 30

@description('Daily Log Analytics ingestion cap in GB; -1 for none.')
param logDailyQuotaGb int = 1

@description('Turn off SCM basic-auth publishing credentials (FTP ones are always off): publish with Microsoft Entra ID.')
param disableBasicPublishingCredentials bool = true

param tags object = {
  workload: 'b2b-signup'
}

// The names the app itself uses (src/storage/mod.rs): created here so that they exist, with
// the identity's permissions, before the first sign-up.
var queueNames = [
  'signup-requests'
  'signup-requests-poison'
]
var tableNames = [
  'SignupRequests'
  'SignupDeadLetters'
  'SignupRateLimits'
]
var deploymentContainerName = 'app-package'

module storage 'modules/storage.bicep' = {
  name: 'storage'
  params: {
    name: storageAccountName
    location: location
    tags: tags
    deploymentContainerName: deploymentContainerName
    queueNames: queueNames
    tableNames: tableNames
  }
}

module signupSite 'modules/signup-site.bicep' = if (deploySignupSite) {
  name: 'signup-site'
  params: {
    name: siteStorageAccountName
    location: location
    tags: tags
  }
}

module communication 'modules/communication.bicep' = {
  name: 'communication'
  params: {
    name: communicationServiceName
    dataLocation: mailDataLocation
    tags: tags
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  params: {
    location: location
    tags: tags
    workspaceName: take('log-${appName}', 63)
    appInsightsName: 'appi-${appName}'
    retentionInDays: logRetentionDays
    dailyQuotaGb: logDailyQuotaGb
  }
}

// CORS: the operator's origins plus the sign-up page's own, never the wildcard (the API takes
// anonymous POSTs; a wildcard would let any site script sign-ups from its visitors' browsers).
var siteOrigins = deploySignupSite ? [signupSite!.outputs.origin] : []
var allowedOrigins = filter(union(corsAllowedOrigins, siteOrigins), origin => origin != '*')

module functionApp 'modules/function-app.bicep' = {
  name: 'function-app'
  params: {
    name: appName
    location: location
    tags: tags
    storageAccountName: storage.outputs.name
    deploymentContainerName: deploymentContainerName
    appInsightsName: monitoring.outputs.appInsightsName
    corsAllowedOrigins: allowedOrigins
    // Plain HTML form posts are redirected to the page's thank-you and error pages.
    signupSiteUrl: deploySignupSite ? signupSite!.outputs.url : ''
    graphBaseUrl: graphBaseUrl
    runtimeVersion: customHandlerRuntimeVersion
    instanceMemoryMB: instanceMemoryMB
    maximumInstanceCount: maximumInstanceCount
    rustLog: rustLog
    adminApiAppId: adminApiAppId
    disableBasicPublishingCredentials: disableBasicPublishingCredentials
    mailEndpoint: communication.outputs.endpoint
    mailSender: communication.outputs.sender
    organizationName: organizationName
  }
}

module roleAssignments 'modules/role-assignments.bicep' = {
  name: 'role-assignments'
  params: {
    principalId: functionApp.outputs.principalId
    storageAccountName: storage.outputs.name
    appInsightsName: monitoring.outputs.appInsightsName
    communicationServiceName: communication.outputs.name
  }
}

// Names and ids only: nothing here is a secret (no keys, no connection strings).
output appName string = functionApp.outputs.name
output defaultHostName string = functionApp.outputs.defaultHostName
output signupUrl string = 'https://${functionApp.outputs.defaultHostName}/api/signup'
output storageAccountName string = storage.outputs.name
output principalId string = functionApp.outputs.principalId
output appInsightsName string = monitoring.outputs.appInsightsName
output siteStorageAccountName string = deploySignupSite ? signupSite!.outputs.name : ''
output siteUrl string = deploySignupSite ? signupSite!.outputs.url : ''
output corsAllowedOrigins array = allowedOrigins
output communicationServiceName string = communication.outputs.name
// For admin-api.bicep's consoleRedirectUris: the admin console on the site, in both languages
// (site/console/, site/fr/console/). Never on the Function App's own address, where the
// Functions host keeps /admin/... for itself.
output consoleRedirectUris array = deploySignupSite ? ['${signupSite!.outputs.url}console/', '${signupSite!.outputs.url}fr/console/'] : []
