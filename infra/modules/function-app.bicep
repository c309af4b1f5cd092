// The Function App: a Flex Consumption plan (FC1, Linux) and the site that runs the b2b-signup
// custom handler with its system-assigned managed identity.
//
// Flex Consumption takes the language stack, the deployment source and the scale settings from
// `functionAppConfig` instead of app settings: FUNCTIONS_WORKER_RUNTIME, FUNCTIONS_EXTENSION_VERSION
// and WEBSITE_RUN_FROM_PACKAGE are deprecated on this plan and not set here. The custom handler
// stack (what local.settings.json says with FUNCTIONS_WORKER_RUNTIME=custom) is
// `functionAppConfig.runtime.name: 'custom'` (one of the runtime names the samples' Flex module
// allows). Shape as in Azure-Samples/azure-functions-flex-consumption-samples (IaC/bicep,
// E2E/*/infra/core/host/functions-flexconsumption.bicep) and
// https://learn.microsoft.com/azure/azure-functions/functions-app-settings#flex-consumption-plan-deprecations

param name string

param location string

param tags object = {}

@description('The app storage account (host state, deployment container, tables, queues).')
param storageAccountName string

@description('Blob container in that account holding the app package.')
param deploymentContainerName string

param appInsightsName string

@description('Browser origins allowed to call the API (CORS). Never "*": main.bicep filters it out.')
param corsAllowedOrigins array

@description('Microsoft Graph base URL (national clouds change it).')
param graphBaseUrl string

@description('The sign-up page\'s address (SIGNUP_SITE_URL), where plain HTML form posts are redirected; empty: the API\'s own origin.')
param signupSiteUrl string = ''

@description('SIGNUP_MAIL_ENDPOINT: the Communication Services resource (communication.bicep).')
param mailEndpoint string

@description('SIGNUP_MAIL_SENDER: DoNotReply@ the linked Azure-managed domain.')
param mailSender string

@description('SIGNUP_ORG_NAME: the organisation named in every mail.')
param organizationName string

@description('Flex Consumption runtime version of the custom handler stack (az functionapp list-flexconsumption-runtimes --location <region> --runtime custom).')
param runtimeVersion string

@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int

@description('Upper bound per function scale group, not per app: https://learn.microsoft.com/azure/azure-functions/flex-consumption-plan#per-function-scaling')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int

@description('RUST_LOG filter for the handler, e.g. info or b2b_signup=debug.')
param rustLog string

@description('The admin API\'s app registration (SIGNUP_ADMIN_APP_ID): its tokens\' audience. Empty: the admin API is off.')
param adminApiAppId string = ''

@description('Turn off FTP and SCM basic-auth publishing credentials (deploy with Microsoft Entra ID instead).')
param disableBasicPublishingCredentials bool

resource storage 'Microsoft.Storage/storageAccounts@2025-01-01' existing = {
  name: storageAccountName
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: take('${name}-plan', 60)
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    tier: 'FlexConsumption'
    name: 'FC1'
  }
  properties: {
    reserved: true
  }
}

resource site 'Microsoft.Web/sites@2024-04-01' = {
  name: name
  location: location
  tags: tags
  kind: 'functionapp,linux'
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    publicNetworkAccess: 'Enabled'
    // No `ftpsState`: it is on the Flex Consumption deprecated list (ARM refuses it in some
    // regions, error 51021); FTP is off through the `ftp` basicPublishingCredentialsPolicies
    // resource below. https://learn.microsoft.com/azure/azure-functions/functions-app-settings#flex-consumption-plan-deprecations
    siteConfig: {
      minTlsVersion: '1.2'
      cors: {
        allowedOrigins: corsAllowedOrigins
        supportCredentials: false
      }
      // No secret in this list: storage and Graph use the managed identity, and the Application
      // Insights connection string only names the component (local auth is off, see
      // monitoring.bicep). Every value here is safe to read in the portal.
      appSettings: [
        // Identity-based host storage, signed in with the managed identity. The service URIs
        // come from the account's own endpoints, so the host and the b2b-signup binary
        // (src/storage/connection.rs, which prefers them) reach the account in a national cloud
        // or behind custom DNS too, where the names derived from the account name alone
        // (<account>.<service>.core.windows.net) are wrong. The account name stays for the
        // binary's account (and any client that reads only it).
        // https://learn.microsoft.com/azure/azure-functions/functions-reference#connecting-to-host-storage-with-an-identity
        {
          name: 'AzureWebJobsStorage__accountName'
          value: storage.name
        }
        {
          name: 'AzureWebJobsStorage__blobServiceUri'
          value: storage.properties.primaryEndpoints.blob
        }
        {
          name: 'AzureWebJobsStorage__queueServiceUri'
          value: storage.properties.primaryEndpoints.queue
        }
        {
          name: 'AzureWebJobsStorage__tableServiceUri'
          value: storage.properties.primaryEndpoints.table
        }
        {
          name: 'AzureWebJobsStorage__credential'
          value: 'managedidentity'
        }
        {
          name: 'APPLICATIONINSIGHTS_CONNECTION_STRING'
          value: appInsights.properties.ConnectionString
        }
        // Telemetry signed with the system-assigned identity (Microsoft Entra authentication).
        {
          name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING'
          value: 'Authorization=AAD'
        }
        {
          name: 'SIGNUP_POLICY_PATH'
          value: 'policy.json'
        }
        {
          name: 'SIGNUP_DRY_RUN'
          value: 'false'
        }
        {
          name: 'SIGNUP_LOG_FORMAT'
          value: 'json'
        }
        {
          name: 'RUST_LOG'
          value: rustLog
        }
        // Graph is called with the managed identity: the platform sets IDENTITY_ENDPOINT and
        // IDENTITY_HEADER, which the app reads; no client id or secret exists in Azure.
        {
          name: 'GRAPH_BASE_URL'
          value: graphBaseUrl
        }
        {
          name: 'SIGNUP_SITE_URL'
          value: empty(signupSiteUrl) ? '/' : signupSiteUrl
        }
        // The admin API accepts access tokens issued for this app registration
        // (admin-api.bicep) by this tenant only. AZURE_TENANT_ID alone is no credential: the
        // Graph client uses a client secret only with AZURE_CLIENT_ID and AZURE_CLIENT_SECRET
        // beside it (src/graph/settings.rs), and neither is ever set here.
        // Mail with the managed identity (no SIGNUP_MAIL_ACCESS_KEY: role-assignments.bicep
        // grants the identity its role on the Communication Services resource).
        {
          name: 'SIGNUP_MAIL_ENDPOINT'
          value: mailEndpoint
        }
        {
          name: 'SIGNUP_MAIL_SENDER'
          value: mailSender
        }
        {
          name: 'SIGNUP_ORG_NAME'
          value: organizationName
        }
        {
          name: 'SIGNUP_ADMIN_APP_ID'
          value: adminApiAppId
        }
        {
          name: 'AZURE_TENANT_ID'
          value: tenant().tenantId
        }
      ]
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${deploymentContainerName}'
          authentication: {
            type: 'SystemAssignedIdentity'
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'custom'
        version: runtimeVersion
      }
    }
  }
}

resource ftpBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'scm'
  properties: {
    allow: !disableBasicPublishingCredentials
  }
}

output name string = site.name
output defaultHostName string = site.properties.defaultHostName
output principalId string = site.identity.principalId
