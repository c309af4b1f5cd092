// Hosting for the static sign-up page: a storage account of its own with the static website
// feature on. The page is public by nature; the account holds nothing else, so publishing the
// page never needs (or grants) any access to the sign-up data in the app's storage account.
//
// The static website switch is the Blob service's `staticWebsite` property, settable through
// Azure Resource Manager from Microsoft.Storage API version 2025-08-01 (earlier versions only
// had it on the data plane: `az storage blob service-properties update --static-website`).
// Files in `$web` are served by the web endpoint through anonymous requests, whatever the
// container's access level ("Static website hosting in Azure Storage"); anonymous blob access
// stays off for the blob endpoint (allowBlobPublicAccess false). docs/DEPLOY.md's smoke test
// loads the page, which checks that combination in the target tenant.

@description('Storage account name: 3-24 lower-case letters and digits, globally unique.')
@minLength(3)
@maxLength(24)
param name string

param location string

param tags object = {}

@description('Page served for the site root and every folder.')
param indexDocument string = 'index.html'

@description('Page served with 404 for a path that has no file.')
param errorDocument404Path string = '404.html'

resource account 'Microsoft.Storage/storageAccounts@2025-08-01' = {
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: 'Standard_LRS'
  }
  properties: {
    accessTier: 'Hot'
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    allowCrossTenantReplication: false
    publicNetworkAccess: 'Enabled'
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2025-08-01' = {
  parent: account
  name: 'default'
  properties: {
    staticWebsite: {
      enabled: true
      indexDocument: indexDocument
      errorDocument404Path: errorDocument404Path
    }
  }
}

// primaryEndpoints.web is 'https://<account>.<zone>.web.core.windows.net/'; a browser's Origin
// header has no trailing slash, and CORS compares origins exactly.
var webEndpoint = account.properties.primaryEndpoints.web

output name string = account.name
output url string = webEndpoint
output origin string = substring(webEndpoint, 0, length(webEndpoint) - 1)
