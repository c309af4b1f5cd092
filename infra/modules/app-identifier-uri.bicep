// Sets an app registration's identifier URI to api://<its appId>. The appId is assigned by
// Microsoft Entra ID when the app is created, so the declaration that creates the app cannot
// name it; this module declares the same app again (same uniqueName) after it exists. Graph
// Bicep upserts by uniqueName with PATCH, which changes only the properties declared here and
// leaves the rest (app roles, api settings) as the first declaration set them:
// https://learn.microsoft.com/graph/templates/concept-uniquely-named-resources
// Without this, api://<appId> is not registered and a token request for
// api://<appId>/.default fails with AADSTS500011 (microsoftgraph/msgraph-bicep-types#239).

extension microsoftGraphV1

@description('uniqueName of the app registration, as declared by the caller.')
param uniqueName string

@description('Its display name (required on every declaration of the app); the same value as the caller\'s.')
param displayName string

@description('The app\'s application (client) id, known once the caller created the app.')
param appId string

resource app 'Microsoft.Graph/applications@v1.0' = {
  uniqueName: uniqueName
  displayName: displayName
  identifierUris: [
    'api://${appId}'
  ]
}

output identifierUri string = 'api://${appId}'
